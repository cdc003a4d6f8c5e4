"""The incremental identity graph: touched components only, equal to a full recomputation."""
