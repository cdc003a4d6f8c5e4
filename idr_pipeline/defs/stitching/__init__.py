"""Dagster definitions of stream stitching: streamed profiles and identify events into the graph."""
