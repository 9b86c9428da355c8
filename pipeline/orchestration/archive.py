"""Stored pipelines: a finished pipeline's results kept beside the report, so the report can be rebuilt
without running the pipeline again.

The default DAG takes hours (docs/performance.md), longer than many machines stay up, and its pipelines
(one economy and seed each) do not depend on one another before the report. A pipeline stored under
`results/<profile>/archive/<economy>/seed<N>/` holds every file the report reads of it (evaluations,
training metrics, best-response results and curves; no checkpoints), the resolved configs its rules
read, its jobs' benchmark records, the machine record of the run and the commit that ran it, and a
manifest with the sha256 of each file. The workflow uses a stored pipeline in place of running it only
when its configs equal the profile's (tracking settings aside: they change no result) and every file
matches its sum; otherwise it runs the pipeline and says in one line why the stored one was not used.

    ./run python -m pipeline.orchestration.archive     # store every finished pipeline of the last run
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envs.rbc.config import ConfigError

from .. import profiles
from .plan import WorkflowPlan

MANIFEST = "manifest.json"
ARCHIVE = "archive"
BENCHMARKS = "benchmarks"
MACHINE = "machine.json"
COMMITS = "commits.txt"  # beside the pipeline's logs: the commit of every run that ran some of its jobs


def archive_root(results_root: Path) -> Path:
    return Path(results_root) / ARCHIVE


def stored_dir(results_root: Path, economy: str, seed: int) -> Path:
    return archive_root(results_root) / economy / f"seed{seed}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------- job records
@dataclass(frozen=True)
class Job:
    seconds: float
    end: float  # the record's modification time: when the job finished


def job_seconds(path: Path) -> float | None:
    """One job's wall time from the `*.benchmark.tsv` Snakemake wrote for it (its last row; None when empty)."""
    with Path(path).open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return float(rows[-1]["s"]) if rows else None


def benchmark_jobs(directory: Path) -> list[Job]:
    """Each job's wall time from the `*.benchmark.tsv` files Snakemake wrote under `directory` (none when it
    does not exist)."""
    jobs = []
    for path in sorted(Path(directory).rglob("*.benchmark.tsv")):
        seconds = job_seconds(path)
        if seconds is not None:
            jobs.append(Job(seconds, path.stat().st_mtime))
    return jobs


def jobs_summary(jobs: list[Job]) -> dict:
    """Count, sum and longest of the jobs' wall times, and the span from the first start to the last end
    (the DAG's wall time when they are one run's jobs)."""
    if not jobs:
        return {"dag": None, "jobs_sum": None, "jobs": 0, "longest_job": None}
    return {
        "dag": max(j.end for j in jobs) - min(j.end - j.seconds for j in jobs),
        "jobs_sum": sum(j.seconds for j in jobs),
        "jobs": len(jobs),
        "longest_job": max(j.seconds for j in jobs),
    }


def commit_of(directory: Path) -> str | None:
    """The commit checked out where `directory` is, '+modified' when its tracked files (results aside)
    differ from it; None outside a git repository."""
    def git(cwd: str, *args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git(str(directory), "rev-parse", "--show-toplevel")
    head = git(top, "rev-parse", "HEAD") if top else None
    if head is None:
        return None
    modified = git(top, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return f"{head}+modified" if modified else head


def record_commit(logs_root: Path, pipelines, checkout: Path) -> None:
    """Note, for each pipeline about to run jobs, the commit of the code running them (one line per run)."""
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {commit_of(checkout) or 'unknown'}\n"
    for economy, seed in pipelines:
        path = Path(logs_root) / economy / f"seed{seed}" / COMMITS
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(line)


def run_commits(logs_root: Path, economy: str, seed: int) -> list[str]:
    """The commits that ran the pipeline's jobs, in the order they first ran some (empty without a record)."""
    path = Path(logs_root) / economy / f"seed{seed}" / COMMITS
    if not path.is_file():
        return []
    commits = [line.split()[-1] for line in path.read_text().splitlines() if line.strip()]
    return list(dict.fromkeys(commits))


# ---------------------------------------------------------------------------------------- comparing configs
def _without_tracking(text: str) -> dict:
    data = yaml.safe_load(text) or {}
    data.pop("tracking", None)
    return data


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The dotted key of the first value that differs between two nested mappings, None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}{key}"
            found = first_difference(a[key], b[key], f"{path}{key}.")
            if found:
                return found
        return None
    return None if a == b else path.rstrip(".") or "(whole file)"


def config_difference(plan: WorkflowPlan, economy: str, seed: int, kind: str, stored_text: str) -> str | None:
    return first_difference(_without_tracking(stored_text), _without_tracking(plan.config_text(economy, seed, kind)))


def pipeline_files(plan: WorkflowPlan, economy: str) -> list[str]:
    """Every file a stored pipeline must hold for this plan: the report's inputs and the configs."""
    return plan.result_files(economy) + [f"config/{kind}.yaml" for kind in plan.config_kinds()]


# ---------------------------------------------------------------------------------------- using stored pipelines
def why_not_usable(plan: WorkflowPlan, results_root: Path, economy: str, seed: int) -> str | None:
    """None when the stored pipeline can stand in for running it; otherwise the first reason it cannot."""
    directory = stored_dir(results_root, economy, seed)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        recorded = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {MANIFEST} is missing or unreadable"
    for name in pipeline_files(plan, economy):
        path = directory / name
        if name not in recorded or not path.is_file():
            return f"it holds no {name}"
        if sha256(path) != recorded[name]:
            return f"{name} does not match the sha256 its manifest records"
    for kind in plan.config_kinds():
        key = config_difference(plan, economy, seed, kind, (directory / "config" / f"{kind}.yaml").read_text())
        if key is not None:
            return f"it was run with another {kind} config ({key} differs)"
    return None


def stored_pipelines(plan: WorkflowPlan, results_root: Path) -> tuple[set[tuple[str, int]], list[str]]:
    """The plan's pipelines that a stored copy stands in for, and one line for each stored copy that cannot."""
    usable, notes = set(), []
    if not plan.use_archive:
        return usable, notes
    for economy, seed in plan.pipelines():
        directory = stored_dir(results_root, economy, seed)
        if not directory.exists():
            continue
        reason = why_not_usable(plan, results_root, economy, seed)
        if reason is None:
            usable.add((economy, seed))
        else:
            notes.append(f"{directory}: not used, {reason}; the pipeline runs again "
                         f"(delete the directory, or store the new run with "
                         f"`./run python -m pipeline.orchestration.archive`)")
    return usable, notes


def read_manifest(results_root: Path, economy: str, seed: int) -> dict:
    return json.loads((stored_dir(results_root, economy, seed) / MANIFEST).read_text())


# ---------------------------------------------------------------------------------------- storing
def store(plan: WorkflowPlan, results_root: Path, logs_root: Path, economy: str, seed: int) -> Path:
    """Copy one finished pipeline's results into the archive; the copy replaces an older one in one rename."""
    results_root, logs_root = Path(results_root), Path(logs_root)
    source = results_root / economy / f"seed{seed}"
    missing = [name for name in pipeline_files(plan, economy) if not (source / name).is_file()]
    if missing:
        raise ConfigError(f"{source} is not finished: {missing[0]} is missing ({len(missing)} files in all); "
                          "run the workflow to the end first")
    for kind in plan.config_kinds():
        key = config_difference(plan, economy, seed, kind, (source / "config" / f"{kind}.yaml").read_text())
        if key is not None:
            raise ConfigError(f"{source}/config/{kind}.yaml differs from the workflow config ({key}): the "
                              "pipeline's results are older than its config; run the workflow to the end first")
    destination = stored_dir(results_root, economy, seed)
    staging = destination.with_name(f".{destination.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    files = {}
    for name in pipeline_files(plan, economy):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, staging / name)
        files[name] = sha256(staging / name)
    pipeline_logs = logs_root / economy / f"seed{seed}"
    for record in sorted(pipeline_logs.rglob("*.benchmark.tsv")):
        target = staging / BENCHMARKS / record.relative_to(pipeline_logs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(record, target)
    machine_path = results_root / MACHINE
    # The commit(s) that ran its jobs; without that record, the one checked out where it is stored.
    commits = run_commits(logs_root, economy, seed) or [commit_of(results_root)]
    manifest = {
        "profile": plan.profile,
        "economy": economy,
        "seed": seed,
        "commit": commits[-1],
        "commits": commits,
        "stored_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": json.loads(machine_path.read_text()) if machine_path.exists() else None,
        "jobs": jobs_summary(benchmark_jobs(pipeline_logs)),
        "files": files,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    previous = destination.with_name(f".{destination.name}.previous-{os.getpid()}")
    if destination.exists():
        destination.replace(previous)
    staging.replace(destination)
    shutil.rmtree(previous, ignore_errors=True)
    return destination


def finished_pipelines(plan: WorkflowPlan, results_root: Path) -> list[tuple[str, int]]:
    return [(economy, seed) for economy, seed in plan.pipelines()
            if all((Path(results_root) / economy / f"seed{seed}" / name).is_file()
                   for name in pipeline_files(plan, economy))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Store the finished pipelines of the last workflow run under results/<profile>/archive.")
    parser.add_argument("--configfile", type=Path, nargs="*", default=[],
                        help="the profile files the run was given (default: workflow/config/default.yaml alone)")
    parser.add_argument("--pipeline", action="append", default=[], metavar="ECONOMY/SEED",
                        help="store only these (e.g. open/0); default: every finished pipeline of the run")
    args = parser.parse_args(argv)
    try:
        config: dict = {}
        for path in [profiles.DEFAULT_PROFILE, *args.configfile]:
            config = profiles.merged(config, _profile_file(path))
        root = Path("results") / profiles.profile_name(config)
        run_config = root / "workflow.yaml"
        if not run_config.is_file():
            raise ConfigError(f"{run_config} not found: run the workflow (./run main) before storing its pipelines")
        plan = WorkflowPlan(yaml.safe_load(run_config.read_text()) or {})
        wanted = [_pipeline(text, plan) for text in args.pipeline] or finished_pipelines(plan, root)
        if not wanted:
            raise ConfigError(f"no finished pipeline under {root}: run the workflow to the end first")
        for economy, seed in wanted:
            where = store(plan, root, Path("logs") / plan.profile, economy, seed)
            manifest = json.loads((where / MANIFEST).read_text())
            print(f"stored {economy}/seed{seed} in {where}: {len(manifest['files'])} files, "
                  f"{manifest['jobs']['jobs']} jobs, {manifest['jobs']['jobs_sum'] or 0:.0f} s of jobs")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _profile_file(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read the profile {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no workflow profile (a mapping of its keys)")
    return data


def _pipeline(text: str, plan: WorkflowPlan) -> tuple[str, int]:
    economy, _, seed = text.partition("/")
    seed = seed.removeprefix("seed")
    if (economy, int(seed) if seed.isdigit() else None) not in plan.pipelines():
        allowed = ", ".join(f"{e}/{s}" for e, s in plan.pipelines())
        raise ConfigError(f"invalid --pipeline {text!r}; allowed: {allowed}")
    return economy, int(seed)


if __name__ == "__main__":
    sys.exit(main())
