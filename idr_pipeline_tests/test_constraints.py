"""constraints.txt pins every package the project installs, at the version installed.

`make install` (and so CI) installs with `-c constraints.txt`; a dependency added to
pyproject.toml without `make lock` would be installed at whatever version is newest that day.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
EXTRAS = ("dev", "demo")


def pinned() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def installed_closure() -> dict[str, str]:
    """Every distribution idr_pipeline with its dev and demo extras needs, transitively."""
    seen: dict[str, str] = {}
    todo = [(req, extras) for req in md.requires("idr_pipeline") or [] for extras in [EXTRAS]]
    while todo:
        text, extras = todo.pop()
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            continue
        name = canonicalize_name(req.name)
        if name == "idr-pipeline" or name in seen:
            continue
        seen[name] = md.version(req.name)
        todo += [(sub, tuple(req.extras)) for sub in md.requires(req.name) or []]
    return seen


def test_every_installed_dependency_is_pinned_at_its_installed_version():
    pins, installed = pinned(), installed_closure()
    assert len(installed) > 100
    unpinned = sorted(set(installed) - set(pins))
    assert unpinned == [], "run `make lock`: these are installed but not in constraints.txt"
    moved = {name: (version, pins[name]) for name, version in installed.items() if pins[name] != version}
    assert moved == {}, "installed (left) differs from constraints.txt (right): run `make install`"


def test_torch_is_pinned_to_its_cpu_build():
    assert pinned()["torch"] == "2.13.0+cpu"
