"""Dagster definitions of behaviour features, behaviour vectors and audience segments."""
