"""Simulated annealing over permutations: the pairwise search on simanneal (pairwise), several candidates per
round (rounds), n models at once (group), the schedule and acceptance all of them share (schedule), the energy
(energy), its incremental form for MLPs (incremental) and that form's rounds of candidates (chain_rounds)."""
