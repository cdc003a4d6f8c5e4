"""Getting source files into the raw zone: source mappings, tolerant readers, landing."""
