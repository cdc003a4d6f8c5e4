"""Dagster definitions of the graph stage: deterministic edges and the identity graph."""
