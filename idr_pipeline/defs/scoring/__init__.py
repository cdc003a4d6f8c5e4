"""Dagster definitions of the scoring stage: the match model and the scored pairs."""
