"""Source mappings: how each source's columns become canonical profile columns.

A mistake in a mapping (a misspelled canonical name, a column the file does not have) must stop
that source with a message naming the problem; guessing would silently load nulls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from idr_pipeline.core.schema import CANONICAL_COLUMNS

SUPPORTED_FORMATS = ("csv", "jsonl", "parquet")


class MappingError(ValueError):
    """The source mapping cannot be applied; the message says which source and column."""


@dataclass(frozen=True)
class SourceMapping:
    name: str
    file: str
    format: str
    trust: int
    # canonical column -> source column
    columns: dict[str, str] = field(default_factory=dict)
    # A file already in the canonical schema: its own `source` column (when present) names the
    # source, and absent optional columns are simply empty. Only record_id is required.
    canonical: bool = False

    def source_column_for(self, canonical: str) -> str | None:
        return self.columns.get(canonical)

    def check_columns(self, available: list[str]) -> None:
        required = ["record_id"] if self.canonical else self.columns.values()
        missing = sorted({src for src in required if src not in available})
        if missing:
            raise MappingError(
                f"source '{self.name}': mapped column(s) {missing} not found in {self.file}; "
                f"the file has {sorted(available)}"
            )

    def extra_columns(self, available: list[str]) -> list[str]:
        mapped = set(self.columns.values())
        return [c for c in available if c not in mapped and not c.startswith("_")]


def parse_mappings(raw: dict) -> dict[str, SourceMapping]:
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), dict) or not raw["sources"]:
        raise MappingError("mapping file must have a non-empty 'sources:' section")
    mappings: dict[str, SourceMapping] = {}
    for name, spec in raw["sources"].items():
        if not isinstance(spec, dict):
            raise MappingError(f"source '{name}': expected a mapping, got {type(spec).__name__}")
        fmt = str(spec.get("format", "")).lower()
        if fmt not in SUPPORTED_FORMATS:
            raise MappingError(f"source '{name}': format '{fmt}' is not one of {SUPPORTED_FORMATS}")
        if not spec.get("file"):
            raise MappingError(f"source '{name}': 'file' is required")
        columns = spec.get("columns") or {}
        unknown = sorted(set(columns) - set(CANONICAL_COLUMNS))
        if unknown:
            raise MappingError(
                f"source '{name}': unknown canonical column(s) {unknown}; valid names are {CANONICAL_COLUMNS}"
            )
        if "source" in columns:
            raise MappingError(f"source '{name}': 'source' is set from the source name and cannot be mapped")
        mappings[str(name)] = SourceMapping(
            name=str(name),
            file=str(spec["file"]),
            format=fmt,
            trust=int(spec.get("trust", 100)),
            columns={str(k): str(v) for k, v in columns.items()},
        )
    return mappings


def load_mappings(path: str | Path) -> dict[str, SourceMapping]:
    path = Path(path)
    if not path.exists():
        raise MappingError(f"mapping file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping file {path} is not valid YAML: {exc}") from exc
    return parse_mappings(raw)


def identity_mapping(name: str, file: str, fmt: str, trust: int = 100) -> SourceMapping:
    """For files already in the canonical schema (``idr resolve`` without --mapping)."""
    return SourceMapping(
        name=name,
        file=file,
        format=fmt,
        trust=trust,
        columns={c: c for c in CANONICAL_COLUMNS if c != "source"},
        canonical=True,
    )
