"""Dagster definitions of the golden stage: one golden record per identity."""
