"""Probabilistic record linkage: comparison levels, nickname table and a Fellegi-Sunter model.

Pure pandas/numpy/rapidfuzz; no Dagster or Spark, so the scoring core can be tested and
benchmarked on its own and called from any executor.
"""
