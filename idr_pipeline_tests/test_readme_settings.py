"""README's configuration table names every setting of the settings object, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from idr_pipeline.settings import IdrSettings

README = Path(__file__).resolve().parents[1] / "README.md"


def documented_variables(readme: str) -> set[str]:
    """The ``IDR_*`` names in the first cell of the configuration table's rows."""
    names: set[str] = set()
    for line in readme.splitlines():
        if line.startswith("| `IDR_"):
            names |= set(re.findall(r"`(IDR_[A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_readme_configuration_table_matches_the_settings() -> None:
    prefix = IdrSettings.model_config["env_prefix"]
    settings = {f"{prefix}{name.upper()}" for name in IdrSettings.model_fields}
    documented = documented_variables(README.read_text())
    assert sorted(settings - documented) == [], "settings missing from README's table"
    assert sorted(documented - settings) == [], "README's table names variables that are no settings"


def test_the_table_parser_reads_every_name_of_a_row() -> None:
    row = "| `IDR_API_HOST`, `IDR_API_PORT` | `127.0.0.1`, `8000` | where `IDR_NOT_THIS` listens |"
    assert documented_variables(f"text\n{row}\n") == {"IDR_API_HOST", "IDR_API_PORT"}
