"""Dagster definitions of behavior features, behavior vectors and audience segments."""
