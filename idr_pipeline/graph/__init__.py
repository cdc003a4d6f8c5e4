"""The graph stage: deterministic edges, clustering of scored pairs, stable identity ids."""
