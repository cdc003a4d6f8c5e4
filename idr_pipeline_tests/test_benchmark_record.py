"""benchmarks/record.py: a benchmark's ``--record`` rewrites only its own section of
docs/performance.md, and that page holds a section for every table the scripts record."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    """A script of benchmarks/ (not a package) as a module of its own name."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


record = _load("record")

PAGE = """# Performance

Prose the reader wrote.

<!-- benchmark:one -->
old table of one
<!-- /benchmark:one -->

Between the sections.

<!-- benchmark:two -->
| a |
|---|
| 1 |
<!-- /benchmark:two -->

The end.
"""


def test_replace_section_changes_only_its_body() -> None:
    out = record.replace_section(PAGE, "one", "| x |\n|---|\n| 2 |")
    assert record.section(out, "one") == "| x |\n|---|\n| 2 |"
    assert "old table of one" not in out
    # everything outside section one is as it was
    before, after = PAGE.split("old table of one\n")
    assert out.startswith(before) and out.endswith(after)
    assert record.section(out, "two") == record.section(PAGE, "two")


def test_replacing_twice_with_the_same_body_is_a_no_op() -> None:
    once = record.replace_section(PAGE, "two", "\n\nnew\n\n")
    assert record.replace_section(once, "two", "new") == once
    assert "<!-- benchmark:two -->\nnew\n<!-- /benchmark:two -->" in once


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (PAGE, "missing"),  # no section 'three'
        (PAGE + "<!-- benchmark:three -->\n<!-- /benchmark:three -->\n" * 2, "2 times"),
        (PAGE + "<!-- /benchmark:three -->\n<!-- benchmark:three -->\n", "comes before"),
        (PAGE + "<!-- benchmark:three -->\n", "missing"),  # never closed
    ],
)
def test_a_section_without_exactly_one_pair_of_markers_is_refused(text: str, problem: str) -> None:
    with pytest.raises(record.MarkerError, match=problem):
        record.replace_section(text, "three", "table")


def test_check_fails_before_a_run_when_a_section_is_missing(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(PAGE)
    record.check(["one", "two"], page)
    with pytest.raises(record.MarkerError, match="three"):
        record.check(["one", "three"], page)


def test_record_writes_the_provenance_line_and_the_table(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(PAGE)
    table = ["| system | F1 |", "|---|---:|", "| ours | 0.9 |"]
    record.record(
        "one",
        table,
        ".venv/bin/python benchmarks/x.py --n 3",
        page,
        commit="abc1234",
        when=datetime(2026, 12, 7, tzinfo=UTC),
        host="x86_64, 2 cores",
    )
    written = page.read_text()
    assert record.section(written, "one").splitlines() == [
        "Measured with `.venv/bin/python benchmarks/x.py --n 3` at commit `abc1234` on 2026-12-07 "
        "(x86_64, 2 cores).",
        "",
        *table,
    ]
    assert written.replace(record.section(written, "one"), "old table of one") == PAGE


def test_git_commit_is_the_checked_out_commit() -> None:
    head = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert head in record.git_commit(REPO)


def test_command_line_names_repository_paths_relatively() -> None:
    line = record.command_line([str(REPO / "benchmarks" / "accuracy.py"), "--datasets", "gen1m"], {})
    assert line.endswith(" benchmarks/accuracy.py --datasets gen1m")
    assert str(REPO) not in line


def test_command_line_starts_with_the_settings_the_script_was_started_with() -> None:
    line = record.command_line(["benchmarks/step_cpu.py", "--log", "run.log"], {"IDR_DRIVER_WORKERS": "2"})
    assert line.startswith("IDR_DRIVER_WORKERS=2 ")
    assert line.endswith(" benchmarks/step_cpu.py --log run.log")


def test_store_urls_are_not_taken_into_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDR_STORE_URL", "singlestoredb://idr:secret@db:3306/idr")
    monkeypatch.setenv("IDR_DRIVER_WORKERS", "1")
    fresh = _load("record")
    assert fresh.STARTING_SETTINGS.get("IDR_DRIVER_WORKERS") == "1"
    assert "IDR_STORE_URL" not in fresh.STARTING_SETTINGS


def test_performance_page_has_a_section_for_every_recorded_table() -> None:
    """What the scripts pass to ``record.record``: a missing section would fail a long run at its end."""
    datasets = _load("datasets").DATASETS
    names = [
        *(f"accuracy-{name}" for name in datasets),
        "api-load-sqlite",
        "api-load-mysql",
        "stream-throughput",
        "standardize-throughput",
        "resolve-steps",
    ]
    record.check(names)
    text = record.PERFORMANCE_MD.read_text()
    opened = re.findall(r"<!-- benchmark:([\w-]+) -->", text)
    closed = re.findall(r"<!-- /benchmark:([\w-]+) -->", text)
    assert sorted(opened) == sorted(closed) == sorted(set(opened))
