"""docs/faults.md: every command it shows runs, exactly as written, and prints what the doc says it prints;
every test its table names exists.

The doc's fenced blocks are read in order: a `yaml` block whose first line is `# NAME.yaml: ...` is a
file the commands use; each line of a `bash` block is one command (`# exits with N` at its end gives the
expected exit code, 0 otherwise); a `text` block right after a `bash` block holds the lines its last
command prints, `<...>` standing for any text. The commands run in a scratch directory that links the
repository's `run`, `pyproject.toml`, `.venv` and `workflow`, so `./run main` works there as in a clone.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import run_installed

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "faults.md"


def blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w+)\n(.*?)^```$", text, re.S | re.M)


def fixtures(doc: list[tuple[str, str]]) -> dict[str, str]:
    found = {}
    for language, body in doc:
        name = re.match(r"# (\S+\.yaml):", body)
        if language == "yaml" and name:
            found[name.group(1)] = body
    return found


def commands(doc: list[tuple[str, str]]) -> list[tuple[str, int, list[str] | None]]:
    """(command, expected exit code, expected output lines or None) in the doc's order."""
    found: list[tuple[str, int, list[str] | None]] = []
    for i, (language, body) in enumerate(doc):
        if language != "bash":
            continue
        lines = [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
        expected = doc[i + 1][1].splitlines() if i + 1 < len(doc) and doc[i + 1][0] == "text" else None
        for j, line in enumerate(lines):
            code = re.search(r"# exits with (\d+)$", line)
            found.append((line, int(code.group(1)) if code else 0, expected if j == len(lines) - 1 else None))
    return found


def pattern(line: str) -> re.Pattern:
    return re.compile(".*?".join(re.escape(part) for part in line.split("<...>")))


def venv_ready() -> bool:
    """`./run` would build a fresh environment (minutes, network) unless the checkout's is current."""
    return run_installed()


def test_the_doc_has_commands_files_and_a_table():
    doc = blocks(DOC.read_text())
    assert {"small.yaml", "empty.yaml", "broken.yaml", "len_factory.yaml"} <= set(fixtures(doc))
    assert len(commands(doc)) >= 12
    assert all(expected for command, _, expected in commands(doc) if "# exits with" in command)


def test_every_test_the_table_names_exists():
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| ") and not line.startswith("| Fault")]
    assert len(rows) >= 30
    defined = {}
    for path in (ROOT / "tests").glob("test_*.py"):
        names = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
        defined[path.name] = names
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 4, row
        named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", cells[3])
        assert named, row
        for file, name in named:
            assert name in defined.get(file, set()), f"{file}::{name} (named in docs/faults.md) does not exist"


@pytest.mark.slow
def test_every_command_runs_as_the_doc_says(tmp_path):
    doc = blocks(DOC.read_text())
    for name, text in fixtures(doc).items():
        (tmp_path / name).write_text(text)
    for name in ("run", "pyproject.toml", ".venv", "workflow"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    skipped = []
    for command, code, expected in commands(doc):
        if (command.startswith("./run") and not venv_ready()) or (
                "training.device=cuda" in command and torch.cuda.is_available()):
            skipped.append(command)
            continue
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == code, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        if expected is None:
            continue
        if command.startswith("python -m"):  # the project's own tools: exactly these lines on stderr
            said = done.stderr.splitlines()
            assert len(said) == len(expected) and all(pattern(e).fullmatch(s) for e, s in zip(expected, said)), \
                f"{command}\nexpected: {expected}\ngot: {said}"
        else:  # Snakemake says more; the doc's lines appear, in order
            said = iter((done.stdout + done.stderr).splitlines())
            for line in expected:
                assert any(pattern(line).fullmatch(s) for s in said), f"{command}: no line matches {line!r}"
    if skipped:
        pytest.skip(f"not run here: {skipped}")
