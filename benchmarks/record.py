"""Write a benchmark's table into docs/performance.md, between that benchmark's markers.

Each measured table in docs/performance.md sits between a pair of HTML comments, invisible
when the page is rendered:

    <!-- benchmark:accuracy-gen1m -->
    ...
    <!-- /benchmark:accuracy-gen1m -->

A benchmark script run with ``--record`` hands its table to :func:`record`, which replaces
what lies between the markers with a line saying how the figures were measured (the command,
the commit, the date, the machine) and the table itself. The prose around the markers is
the reader's explanation and is never touched. A section whose markers are missing, repeated
or out of order is an error, found by :func:`check` before a long run starts rather than
after it.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PERFORMANCE_MD = REPO / "docs" / "performance.md"
#: The ``IDR_*`` settings the script was started with, taken when it imports this module: a
#: script may set its own afterwards (topics, a temporary lake), which are not part of the
#: command. ``*_URL`` variables are left out, since a store URL can carry a password.
STARTING_SETTINGS = {
    name: value for name, value in os.environ.items() if name.startswith("IDR_") and not name.endswith("_URL")
}


class MarkerError(ValueError):
    """A section's markers are missing, repeated or in the wrong order."""


def markers(name: str) -> tuple[str, str]:
    """The opening and closing marker of section ``name``."""
    return f"<!-- benchmark:{name} -->", f"<!-- /benchmark:{name} -->"


def _span(text: str, name: str) -> tuple[int, int]:
    """Where the body of section ``name`` starts and ends in ``text`` (between the markers)."""
    opening, closing = markers(name)
    for marker in (opening, closing):
        count = text.count(marker)
        if count != 1:
            found = "missing" if count == 0 else f"there {count} times"
            raise MarkerError(f"{marker} is {found}; section {name!r} needs each marker exactly once")
    start, end = text.index(opening) + len(opening), text.index(closing)
    if end < start:
        raise MarkerError(f"section {name!r}: {closing} comes before {opening}")
    return start, end


def check(names: Iterable[str], path: Path = PERFORMANCE_MD) -> None:
    """Raise :class:`MarkerError` unless every section in ``names`` can be recorded in ``path``."""
    text = path.read_text()
    for name in names:
        _span(text, name)


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the body of section ``name`` replaced by ``body``; the rest unchanged."""
    start, end = _span(text, name)
    body = body.strip("\n")
    return f"{text[:start]}\n{body}\n{text[end:]}"


def section(text: str, name: str) -> str:
    """The body of section ``name``, without the surrounding newlines."""
    start, end = _span(text, name)
    return text[start:end].strip("\n")


def git_commit(repo: Path = REPO) -> str:
    """The checked-out commit, ``-dirty`` when the tree has uncommitted changes."""
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=repo, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def machine() -> str:
    """Cores, memory and Python of this machine, as a benchmark's figures depend on them."""
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM"
    return f"{platform.machine()}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def command_line(argv: Sequence[str] | None = None, settings: Mapping[str, str] | None = None) -> str:
    """The command that ran this script, after the ``IDR_*`` settings it was started with, paths
    relative to the repository where they lie in it."""
    argv = sys.argv if argv is None else argv
    settings = STARTING_SETTINGS if settings is None else settings

    def short(path: str) -> str:
        resolved = Path(path).absolute()
        return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else path

    environment = [f"{name}={shlex.quote(value)}" for name, value in sorted(settings.items())]
    return " ".join([*environment, shlex.join([short(sys.executable), short(argv[0]), *argv[1:]])])


def provenance(command: str, commit: str, when: datetime, host: str) -> str:
    """The line above a recorded table: how, at which commit, when and where it was measured."""
    return f"Measured with `{command}` at commit `{commit}` on {when:%Y-%m-%d} ({host})."


def record(
    name: str,
    table: Sequence[str],
    command: str | None = None,
    path: Path = PERFORMANCE_MD,
    *,
    commit: str | None = None,
    when: datetime | None = None,
    host: str | None = None,
) -> Path:
    """Replace section ``name`` of ``path`` with the provenance line and ``table`` (its lines)."""
    line = provenance(
        command if command is not None else command_line(),
        commit if commit is not None else git_commit(),
        when if when is not None else datetime.now(UTC),
        host if host is not None else machine(),
    )
    text = path.read_text()
    path.write_text(replace_section(text, name, "\n".join([line, "", *table])))
    return path


def fenced(lines: Iterable[str]) -> list[str]:
    """Plain-text output as a fenced block, for scripts that print aligned text, not a table."""
    return ["```", *lines, "```"]
