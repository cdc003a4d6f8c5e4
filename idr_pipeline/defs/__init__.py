"""Dagster layer: one folder per domain, autoloaded by ``idr_pipeline.definitions``.

Assets here are thin: they resolve resources, call a function from the pure pipeline
modules, and turn its figures into metadata and check results.
"""
