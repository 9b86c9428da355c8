"""The one-way flow of the house: which package may import which (pipeline/__init__.py states the rules).

Every `import` and `from ... import` statement of every module is read from its syntax tree, the
ones inside functions too (a lazy import is still a dependency), with relative imports resolved
against the module's package. A rule broken anywhere names the file, the line and the import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("envs", "gpu", "pipeline")

# room -> rooms it must never import. A room is a package or a module, matched by dotted prefix.
FORBIDDEN = {
    "envs": ("pipeline", "gpu", "workflow"),
    "gpu": ("pipeline", "workflow"),
    "pipeline": ("workflow",),
    "pipeline.config": ("pipeline.learning", "pipeline.analysis", "pipeline.orchestration", "pipeline.tracking",
                        "pipeline.profiles"),
    "pipeline.factory": ("pipeline.learning", "pipeline.analysis", "pipeline.orchestration", "pipeline.tracking",
                         "pipeline.config", "pipeline.profiles"),
    "pipeline.profiles": ("pipeline.learning", "pipeline.analysis", "pipeline.orchestration", "pipeline.tracking"),
    "pipeline.tracking": ("pipeline.learning", "pipeline.analysis", "pipeline.orchestration"),
    "pipeline.learning": ("pipeline.analysis", "pipeline.orchestration"),
    "pipeline.orchestration": ("pipeline.learning", "pipeline.analysis"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, list[str]]]:
    """(line, absolute module names) for every import statement of a file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, [alias.name]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pipeline import learning` imports pipeline.learning too
            found.append((node.lineno, [target] + [f"{target}.{alias.name}" for alias in node.names]))
    return found


def within(name: str, room: str) -> bool:
    return name == room or name.startswith(room + ".")


def violations(files: list[Path]) -> list[str]:
    out = []
    for path in files:
        importer = module_name(path)
        rooms = [room for room in FORBIDDEN if within(importer, room)]
        for line, targets in imports(path):
            for room in rooms:
                for banned in FORBIDDEN[room]:
                    target = next((t for t in targets if within(t, banned)), None)
                    if target is not None and not within(importer, banned):
                        out.append(f"{path.relative_to(ROOT)}:{line}: {importer} imports {target} ({room} must not import {banned})")
    return out


def package_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_the_house_keeps_its_import_rules():
    files = package_files()
    assert len(files) > 30, "the rule must read the whole code base"
    assert violations(files) == []


@pytest.mark.parametrize(
    "where, source, banned",
    [
        ("envs/rbc/leak.py", "from pipeline.learning.policies import GroupLayout\n", "pipeline"),
        ("envs/rbc/leak.py", "def f():\n    from gpu.backend import CudaBackend\n", "gpu"),
        ("gpu/leak.py", "import pipeline.config\n", "pipeline"),
        ("pipeline/learning/leak.py", "from ..analysis import report\n", "pipeline.analysis"),
        ("pipeline/learning/leak.py", "from ..orchestration.plan import WorkflowPlan\n", "pipeline.orchestration"),
        ("pipeline/orchestration/leak.py", "from pipeline.learning import train\n", "pipeline.learning"),
        ("pipeline/profiles.py", "from .orchestration.plan import WorkflowPlan\n", "pipeline.orchestration"),
        ("pipeline/learning/leak.py", "from ..profiles import load_experiment\n", None),  # the shared resolution
        ("pipeline/analysis/leak.py", "import workflow.rules\n", "workflow"),
        ("pipeline/leak.py", "from . import analysis\n", None),  # the package root may gather its rooms
    ],
)
def test_a_broken_rule_is_caught(tmp_path, monkeypatch, where, source, banned):
    """The checker itself: each planted import breaks exactly the rule it should, lazy ones included."""
    fake_root = tmp_path
    path = fake_root / where
    path.parent.mkdir(parents=True)
    path.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    found = violations([path])
    if banned is None:
        assert found == []
    else:
        assert len(found) == 1 and f"must not import {banned})" in found[0], found
