"""Files on disk: atomic pickle-free I/O (files), checkpoints and permutations (checkpoints), provenance,
and the tidy tables gathered from the JSON sidecars (tables)."""
