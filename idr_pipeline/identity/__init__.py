"""Identity: deterministic edges, connected components and stable identity ids."""
