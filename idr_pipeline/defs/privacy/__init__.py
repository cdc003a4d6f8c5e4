"""Dagster definitions (loaded by idr_pipeline.definitions)."""
