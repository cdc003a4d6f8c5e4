"""The code location: every definition under ``idr_pipeline/defs/``, loaded by folder."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


def load_idr_definitions() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    return load_idr_definitions()
