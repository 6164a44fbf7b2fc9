"""Files on disk: atomic pickle-free I/O (files), checkpoints and permutations (checkpoints), provenance, whether a
checkpoint's network trained (trained), and the tidy tables gathered from the JSON sidecars (tables)."""
