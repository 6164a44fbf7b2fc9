"""Datasets: raw file formats (formats), readers of each dataset (readers), preparation into uint8 tensor
files (prepare), model-ready splits (dataset) and fetching missing files before a run (fetch)."""
