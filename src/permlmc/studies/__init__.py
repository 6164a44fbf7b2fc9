"""Studies that need more than one pair per job: all pairs among many small networks (App. E.3), the random-
initialisation check of Theorem 3.1, and ensembles (App. C). Each returns plain rows for a tidy table."""
