"""The smoke DAG as the workflow and cluster tests see it: how to run Snakemake, what a run must contain.

The local smoke run is a session fixture (conftest.py imports it): the workflow tests read it, and
the cluster test compares a run on SLURM with it, so the DAG runs locally once per session.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.orchestration.plan import ABLATION, CONFIG_KINDS, WorkflowPlan

from mlflow_support import MlflowServer

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "workflow" / "Snakefile"
DEFAULT = ROOT / "workflow" / "config" / "default.yaml"
SMOKE = ROOT / "workflow" / "config" / "smoke.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def merged(*paths: Path) -> dict:
    """What Snakemake's --configfile does: mappings merge key by key, other values replace."""

    def merge(base, over):
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merge(base.get(k), v) if k in base else v for k, v in over.items()}}
        return copy.deepcopy(over)

    config: dict = {}
    for path in paths:
        config = merge(config, load(path))
    return config


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """The snakemake command on the repository's workflow, run in `workdir` (never in the checkout)."""
    command = [*SNAKEMAKE, "-s", str(SNAKEFILE), "--directory", str(workdir), *args]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run or dry-run."""
    match = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal\s+\d+", output, re.S)
    assert match, f"no job table in:\n{output[-3000:]}"
    return {name: int(count) for name, count in (line.split() for line in match.group(1).strip().splitlines())}


def expected_jobs(plan: WorkflowPlan) -> dict[str, int]:
    """Every job the plan implies, counted from its pipelines, branches and stages."""
    pipelines = plan.pipelines()
    counts = {
        "resolve_config": len(pipelines) * (len(CONFIG_KINDS) if plan.ablation else len(CONFIG_KINDS) - 2),
        "workflow_config": 1,
        "evaluate": sum(len(plan.evaluated_branches(economy)) for economy, _ in pipelines),
        "report": 1,
        "all": 1,
        **({"machine": 1} if plan.record_machine else {}),
    }
    for stage in plan.stages:
        counts[f"train_{stage}"] = sum(len(plan.branch_of_stage(stage, economy)) for economy, _ in pipelines)
    pipelines = len(pipelines)
    if plan.ablation:
        counts["train_nocurriculum"] = pipelines
    for group in plan.best_response_types:
        counts[f"best_response_{group}"] = (pipelines * len(plan.best_response_branches)
                                            * len(plan.best_response_probes(group)))
    return counts


def failure_logs(workdir: Path) -> str:
    return "\n".join(f"== {p}\n{p.read_text()[-1500:]}" for p in (workdir / "logs").rglob("*.log") if p.stat().st_size)


# ---------------------------------------------------------------------------------------- the MLflow tree
def expected_rules(plan: WorkflowPlan, economy: str) -> set[str]:
    """The rule id of every child run of one of the economy's pipelines: each stage of each branch, the
    ablation, every evaluation and every best response."""
    from pipeline.learning.session import Variant

    def label(name: str) -> str:
        branch = plan.branches[name]
        return Variant(branch.fixed_tax, branch.welfare, branch.max_corporate_tax, branch.fixed_corporate_tax).label()

    expected = {f"train:learned:{stage}" for stage in plan.prefix_stages}
    for name in plan.branches_of(economy):
        expected |= {f"train:{label(name)}:{stage}" for stage in plan.branch_stages}
    if plan.ablation:
        expected.add(f"train:learned:{ABLATION}")
    expected |= {f"evaluate:{b}" for b in plan.evaluated_branches(economy)}
    for name in plan.best_response_branches:
        expected |= {f"best_response:{label(name)}:{g}:{probe}"
                     for g in plan.best_response_types for probe in plan.best_response_probes(g)}
    return expected


def pipeline_tree(client, plan: WorkflowPlan, economy: str, seed: int) -> tuple:
    """(the pipeline's parent runs, its child runs) on a tracking server, found by their tags."""
    experiment = client.get_experiment_by_name(plan.experiment_id(economy))
    assert experiment is not None, f"no experiment {plan.experiment_id(economy)}"
    pipeline = plan.pipeline_id(economy, seed)
    parents = client.search_runs([experiment.experiment_id],
                                 f"tags.`dge.pipeline` = '{pipeline}' and tags.`dge.role` = 'parent'")
    runs = client.search_runs([experiment.experiment_id], f"tags.`dge.pipeline` = '{pipeline}'", max_results=1000)
    parent_ids = {p.info.run_id for p in parents}
    return parents, [r for r in runs if r.info.run_id not in parent_ids]


def assert_complete_tree(client, plan: WorkflowPlan, economy: str, seed: int):
    """One parent, and under it exactly one finished child per rule; returns (parent, children)."""
    parents, children = pipeline_tree(client, plan, economy, seed)
    assert len(parents) == 1
    parent = parents[0]
    assert sorted(r.data.tags["dge.rule"] for r in children) == sorted(expected_rules(plan, economy))
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    assert all(r.info.status == "FINISHED" for r in children)
    return parent, children


# ---------------------------------------------------------------------------------------- two runs' results
def without_wall_times(data):
    """A loaded JSON document or checkpoint without its `wall_time_s` entries and the report's per-pipeline
    provenance (`pipelines`: commit, machine and job times of the run)."""
    if isinstance(data, dict):
        return {k: without_wall_times(v) for k, v in data.items() if k not in ("wall_time_s", "pipelines")}
    return [without_wall_times(v) for v in data] if isinstance(data, (list, tuple)) else data


def same(x, y) -> bool:
    """Equal nested containers of tensors: same dtype, shape and every bit."""
    import torch

    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(same(u, v) for u, v in zip(x, y))
    return x == y


def result_differences(a: Path, b: Path) -> list[str]:
    """Files of two result trees that differ beyond wall times (byte-identical otherwise).

    Wall times live in `wall_time_s` entries (JSON, checkpoints) and in the report's "DAG wall time" line.
    """
    import torch

    def lines(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines()
                if not line.startswith(("DAG wall time", "| open seed", "| closed seed"))]

    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    others = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    differences = [f"only in one tree: {sorted(map(str, set(files) ^ set(others)))}"] if files != others else []
    for rel in (f for f in files if f in set(others)):
        pa, pb = a / rel, b / rel
        if pa.read_bytes() == pb.read_bytes():
            continue
        if rel.suffix == ".pt":
            ok = same(*(without_wall_times(torch.load(p, weights_only=True)) for p in (pa, pb)))
        elif rel.suffix == ".json":
            ok = without_wall_times(json.loads(pa.read_text())) == without_wall_times(json.loads(pb.read_text()))
        else:
            ok = rel.suffix in (".yaml", ".md", ".csv") and lines(pa) == lines(pb)
        if not ok:
            differences.append(str(rel))
    return differences


# ---------------------------------------------------------------------------------------- session fixtures
@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory):
    """An MLflow server on loopback with its own SQLite store and artifact directory."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        server.start()
    except RuntimeError as err:
        pytest.fail(str(err))
    yield server.uri
    server.stop()


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, tracking_server):
    """The smoke DAG, run once for the session in a fresh working directory."""
    workdir = tmp_path_factory.mktemp("smoke-dag")
    # The interpreter's own bin directory is taken off PATH, as on a machine where `./run` was never
    # activated: the rules must run the package's interpreter, not whichever `python` PATH finds.
    interpreter_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if d != interpreter_bin)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_server, "PATH": path}
    began = time.monotonic()
    result = snakemake(workdir, "--cores", "2", "--configfile", str(DEFAULT), str(SMOKE), env=env, timeout=1800)
    elapsed = time.monotonic() - began
    if result.returncode != 0:
        pytest.fail(f"smoke DAG failed:\n{result.stderr[-4000:]}\n{failure_logs(workdir)[-6000:]}")
    print(f"\nsmoke DAG: {elapsed:.1f} s wall with --cores 2")
    plan = WorkflowPlan(merged(DEFAULT, SMOKE))
    return {"workdir": workdir, "env": env, "elapsed": elapsed, "plan": plan, "output": result.stdout + result.stderr,
            "results": workdir / "results" / "smoke", "uri": tracking_server}
