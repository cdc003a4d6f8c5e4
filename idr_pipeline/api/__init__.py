"""The real-time query and activation API (``idr serve``); ``create_app`` builds it."""

from idr_pipeline.api.app import create_app

__all__ = ["create_app"]
