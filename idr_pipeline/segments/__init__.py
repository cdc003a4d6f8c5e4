"""Audience segments: typed rule expressions, behaviour prototypes and their members."""
