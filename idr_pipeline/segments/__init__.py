"""Audience segments: typed rule expressions, behavior prototypes and their members."""
