"""The golden stage: one best profile per identity by survivorship, with its identifiers."""
