"""idr_pipeline: identity resolution and audience segmentation.

Pure domain modules live at the package top level and in sub-packages without Dagster
imports; the Dagster layer is confined to ``idr_pipeline.defs``.
"""

__version__ = "0.1.0"
