"""Every command shown in README.md and docs/*.md, run as written.

The fenced `bash` blocks of README.md and of every docs/*.md file (whoever wrote it) are read line by
line, and each command runs with bash, in document order, in one temporary copy of the repository
whose `.venv` is the project's own (so `./run` finds it installed and installs nothing). The venv's
bin directory is taken off PATH: a command must work as written from a fresh shell. Fenced `python`
blocks run too, unless their first line names a file (`# mypkg/nets.py`, `# pg.yaml`): such blocks
are written to that path in the copy first, as a reader would save them.

Two things differ from a reader's machine, and the test states them instead of skipping anything:
- the copy's `workflow/config/default.yaml` is the smoke profile merged over the default one, so
  every `./run main ...` command runs as written in minutes instead of hours (the default DAG's
  plan is checked by tests/test_workflow.py);
- the commands in CHANGED run in the stated form, for the reason given; the ones in SERVERS run
  until their page answers, then are stopped.
A doc in OWN_RUNNERS (docs/faults.md, whose commands fail on purpose) is run by its own test, which
checks each command's documented exit code and output; this test checks that that runner reads every
command of the doc.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_workflow import DEFAULT, SMOKE, merged

from conftest import ROOT, run_installed

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
FILE_HEADER = re.compile(r"^# ([\w./-]+\.(?:py|ya?ml))\s*$")

# command as documented -> (the form the test runs, why)
CHANGED = {
    "./run test": (
        "./run test --collect-only -q",
        "the suite cannot run itself from one of its tests; collecting it goes through ./run's install "
        "check and imports every test module",
    ),
    "./run python -m pip install -e '.[gpu]'": (
        "./run python -m pip install --dry-run -e '.[gpu]'",
        "the copy shares the project's venv: installing from the copy would point the venv's editable install "
        "at a directory deleted after the test; --dry-run resolves the same requirements and installs nothing",
    ),
}
# docs whose commands a test of their own runs, exactly as written, checking the exit code and output each
# documents (their commands fail on purpose): doc -> that test's module
OWN_RUNNERS = {"docs/faults.md": "test_faults_doc"}
# blocks that open with this line need a SLURM cluster: tests/test_slurm.py starts one and runs them there
CLUSTER_MARK = "# needs a SLURM cluster"
# commands that serve until stopped -> the path that answers once they are up
SERVERS = {"./run ui": "/health"}
TIMEOUT = 1800


@dataclass(frozen=True)
class Block:
    doc: str
    language: str
    text: str


def blocks() -> list[Block]:
    return [Block(path.relative_to(ROOT).as_posix(), m.group(1), m.group(2))
            for path in DOCS for m in FENCE.finditer(path.read_text())]


def commands(text: str) -> list[str]:
    """The commands of a bash block: comment lines dropped, continued lines joined."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.strip() if pending else line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        out.append(pending.strip())
        pending = ""
    return out


def bare(command: str) -> str:
    """The command without its trailing comment (documented commands never quote a '#')."""
    return re.sub(r"\s+#.*$", "", command)


def documented_steps() -> list[tuple[str, str, str]]:
    """(where, kind, text) in document order: kind is "bash", "python" or "file"."""
    steps = []
    for block in blocks():
        if block.doc in OWN_RUNNERS or block.text.startswith(CLUSTER_MARK):
            continue
        header = FILE_HEADER.match(block.text.splitlines()[0]) if block.text.strip() else None
        if header:
            steps.append((f"{block.doc}: {header.group(1)}", "file", block.text))
        elif block.language == "bash":
            steps += [(f"{block.doc}: {bare(c)}", "bash", c) for c in commands(block.text)]
        elif block.language == "python":
            steps.append((f"{block.doc}: python block {hashlib.sha1(block.text.encode()).hexdigest()[:8]}", "python",
                          block.text))
    return [(f"{n:02d} {where}", kind, text) for n, (where, kind, text) in enumerate(steps)]


STEPS = documented_steps()


# ------------------------------------------------------------------------------------------------ extraction
def test_the_extraction_reads_every_doc_and_every_kind_of_block():
    docs = {b.doc for b in blocks()}
    assert {"README.md", "docs/model.md", "docs/rerun.md"} <= docs
    assert {b.language for b in blocks()} <= {"bash", "python", "yaml", "text", ""}, "a block language the test ignores"
    bash = [text for _, kind, text in STEPS if kind == "bash"]
    assert "./run main" in map(bare, bash) and "./run test" in map(bare, bash)
    assert any(where.endswith("pg.yaml") for where, kind, _ in STEPS if kind == "file")
    assert commands("a \\\n  b  # c\n# d\n\ne\n") == ["a b  # c", "e"]


@pytest.mark.parametrize("doc", sorted(OWN_RUNNERS))
def test_a_doc_with_its_own_runner_has_every_command_run_there(doc):
    """Nothing escapes: the runner reads the same commands from the doc as this test would."""
    runner = importlib.import_module(OWN_RUNNERS[doc])
    text = (ROOT / doc).read_text()
    ours = [bare(c) for b in blocks() if b.doc == doc and b.language == "bash" for c in commands(b.text)]
    theirs = [bare(command) for command, _, _ in runner.commands(runner.blocks(text))]
    assert ours and ours == theirs
    assert callable(getattr(runner, "test_every_command_runs_as_the_doc_says", None))


def test_the_slurm_test_runs_every_command_that_needs_a_cluster():
    """Blocks marked as needing a cluster are left to tests/test_slurm.py, which must read the same commands and
    run each of them (it looks each one up by a fragment that names it alone)."""
    import test_slurm

    ours = [c for b in blocks() if b.text.startswith(CLUSTER_MARK) for c in commands(b.text)]
    assert ours and ours == test_slurm.cluster_commands()
    source = (ROOT / "tests" / "test_slurm.py").read_text()
    fragments = re.findall(r'documented\("([^"]+)"\)', source)
    assert sorted(ours) == sorted(test_slurm.documented(f) for f in fragments)


def test_every_changed_or_served_command_is_still_documented():
    documented = {bare(text) for _, kind, text in STEPS if kind == "bash"}
    stale = (set(CHANGED) | set(SERVERS)) - documented
    assert not stale, f"no longer in the docs, drop from the lists: {sorted(stale)}"


# ------------------------------------------------------------------------------------------------ running them
def project_venv() -> Path:
    """The venv ./run made, and which already holds everything ./run would install from the copy."""
    if not run_installed():
        pytest.fail("the documented commands run through ./run, which needs ./.venv installed by ./run for this "
                    "pyproject.toml (run the suite with ./run test)", pytrace=False)
    return ROOT / ".venv"


def repository_copy(target: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(project_venv())
    quick = merged(DEFAULT, SMOKE)
    (target / "workflow" / "config" / "default.yaml").write_text(yaml.safe_dump(quick, sort_keys=False))
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shell_environment() -> dict[str, str]:
    venv_bin = str(ROOT / ".venv" / "bin")
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d not in (venv_bin, str(Path(sys.executable).parent)))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "PYTHONPATH")}
    return {**env, "PATH": path, "MLFLOW_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}


def serve(command: str, ready_path: str, cwd: Path, env: dict) -> tuple[int, str]:
    process = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{env['MLFLOW_PORT']}{ready_path}"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status - 200, f"{url} answered {response.status}"
            except OSError:
                time.sleep(1)
        return 1, f"{url} never answered"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def run_step(kind: str, text: str, cwd: Path, env: dict) -> tuple[int, str]:
    if kind == "file":
        path = cwd / FILE_HEADER.match(text.splitlines()[0]).group(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return 0, f"wrote {path.relative_to(cwd)}"
    if kind == "python":
        script = cwd / "doc_block.py"
        script.write_text(text)
        text = f"./run python {script.name}"
    elif bare(text) in SERVERS:
        return serve(text, SERVERS[bare(text)], cwd, env)
    elif bare(text) in CHANGED:
        text = CHANGED[bare(text)][0]
    done = subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    return done.returncode, (done.stdout + done.stderr)[-4000:]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every documented step, run once in order in one copy; later steps may use what earlier ones made."""
    copy = repository_copy(tmp_path_factory.mktemp("docs-copy"))
    env = shell_environment()
    results = {}
    for where, kind, text in STEPS:
        began = time.monotonic()
        results[where] = (*run_step(kind, text, copy, env), time.monotonic() - began)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("where", [where for where, _, _ in STEPS],
                         ids=[re.sub(r"[^\w./=-]+", "_", where)[:90] for where, _, _ in STEPS])
def test_documented_step_runs(outcomes, where):
    code, output, seconds = outcomes[where]
    print(f"{where}: {seconds:.0f} s")
    assert code == 0, f"{where} failed:\n{output}"
