"""Stored pipelines (pipeline.orchestration.archive): a stored copy stands in for running a pipeline only
when it would give the same report, and says why when it cannot.

The paired identity: the smoke run's report rebuilt from the stored copy alone (its checkpoints and live
results deleted) equals the report built from the live files, except where the report says where the
numbers came from. The stand-in is judged by Snakemake's own plan (`-n`), not by the module's word.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_support import DEFAULT, SMOKE, job_counts, merged, pipeline_tree, snakemake, without_wall_times

from envs.rbc.config import ConfigError
from pipeline.orchestration.archive import (
    Job,
    archive_root,
    first_difference,
    jobs_summary,
    pipeline_files,
    record_commit,
    run_commits,
    store,
    stored_dir,
    why_not_usable,
)
from pipeline.orchestration.plan import WorkflowPlan

from conftest import ROOT

PIPELINE_RULES = ("train_", "evaluate", "best_response_", "resolve_config")


def copy_of_run(smoke_run, target: Path) -> Path:
    """The smoke run's results and logs, with Snakemake's records of them, in a directory of its own."""
    for name in ("results", "logs", ".snakemake"):
        shutil.copytree(smoke_run["workdir"] / name, target / name, symlinks=True,
                        ignore=shutil.ignore_patterns("mlflow*", "*.lock", "locks", "incomplete"))
    return target


def archive_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.orchestration.archive", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=300)


def pipeline_jobs(output: str) -> dict[str, int]:
    return {rule: n for rule, n in job_counts(output).items() if rule.startswith(PIPELINE_RULES)}


def plan_with(stored_run, tmp_path: Path, change: dict) -> subprocess.CompletedProcess:
    """Snakemake's plan (-n) of the stored run with one more profile file holding `change`."""
    path = tmp_path / "change.yaml"
    path.write_text(yaml.safe_dump(change))
    result = snakemake(stored_run["workdir"], "-n", "--configfile", str(DEFAULT), str(SMOKE), str(path),
                       env=stored_run["env"])
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def stored_run(smoke_run, tmp_path_factory):
    """A copy of the smoke run whose only pipeline was stored, then its live results deleted."""
    workdir = copy_of_run(smoke_run, tmp_path_factory.mktemp("stored-run"))
    stored = archive_cli(workdir, "--configfile", str(SMOKE))
    assert stored.returncode == 0, stored.stderr
    live = workdir / "results" / "smoke"
    original = {name: (live / name).read_text() for name in ("summary.json", "summary.md")}
    for economy, seed in smoke_run["plan"].pipelines():
        shutil.rmtree(live / economy / f"seed{seed}")
    for name in original:
        (live / name).unlink()
    return {"workdir": workdir, "stdout": stored.stdout, "original": original, "env": smoke_run["env"],
            "plan": smoke_run["plan"]}


@pytest.mark.slow
def test_a_stored_pipeline_runs_no_job_and_gives_the_same_report(stored_run):
    workdir, plan = stored_run["workdir"], stored_run["plan"]
    assert "stored open/seed0" in stored_run["stdout"]
    assert not list((workdir / "results" / "smoke" / "archive").rglob("*.pt"))  # never a checkpoint
    result = snakemake(workdir, "--cores", "2", "--configfile", str(DEFAULT), str(SMOKE), env=stored_run["env"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert pipeline_jobs(result.stdout + result.stderr) == {}
    assert job_counts(result.stdout + result.stderr)["report"] == 1
    rebuilt = json.loads((workdir / "results" / "smoke" / "summary.json").read_text())
    original = json.loads(stored_run["original"]["summary.json"])
    assert [p["source"] for p in rebuilt["pipelines"]] == ["archive"] * len(plan.pipelines())
    assert [p["source"] for p in original["pipelines"]] == ["this run"] * len(plan.pipelines())
    # The stored job times and commit are the live run's.
    assert [p["jobs"] for p in rebuilt["pipelines"]] == [p["jobs"] for p in original["pipelines"]]
    assert [p["commit"] for p in rebuilt["pipelines"]] == [p["commit"] for p in original["pipelines"]]

    def comparable(summary: dict) -> dict:
        return {k: v for k, v in without_wall_times(summary).items() if k != "pipelines"}

    assert comparable(rebuilt) == comparable(original)
    text = (workdir / "results" / "smoke" / "summary.md").read_text()

    def numbers(markdown: str) -> list[str]:  # the report's lines, without the run's provenance
        return [line for line in markdown.splitlines()
                if not line.startswith(("DAG wall time", "| open seed"))]

    assert numbers(text) == numbers(stored_run["original"]["summary.md"])
    assert "| open seed 0 | archive |" in text
    # The MLflow parent run of each stored pipeline says the numbers come from the stored copy and its commit.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=stored_run["env"]["MLFLOW_TRACKING_URI"])
    for economy, seed in plan.pipelines():
        parents, _ = pipeline_tree(client, plan, economy, seed)
        assert [r.data.tags.get("dge.source") for r in parents] == ["archive"]
        record = next(p for p in original["pipelines"] if (p["economy"], p["seed"]) == (economy, seed))
        assert parents[0].data.tags.get("dge.commit") == record["commit"]  # absent where no commit was known


@pytest.mark.slow
def test_a_changed_config_runs_the_pipeline_again_and_names_the_key(stored_run, tmp_path):
    change = {"experiment": {"evaluation": {"episodes": 3}}}
    result = plan_with(stored_run, tmp_path, change)
    assert "archive/open/seed0: not used, it was run with another evaluate config (evaluation.episodes differs)" \
        in result.stderr
    plan = WorkflowPlan(merged(DEFAULT, SMOKE, tmp_path / "change.yaml"))
    assert pipeline_jobs(result.stdout + result.stderr)["evaluate"] == len(plan.evaluated_branches("open"))
    assert pipeline_jobs(result.stdout + result.stderr)["train_consumers"] == 1


@pytest.mark.slow
def test_tracking_settings_change_no_result_so_the_stored_copy_still_stands_in(stored_run, tmp_path):
    result = plan_with(stored_run, tmp_path, {"experiment": {"tracking": {"enabled": False}}})
    assert "not used" not in result.stderr
    assert pipeline_jobs(result.stdout + result.stderr) == {}


@pytest.mark.slow
def test_use_archive_false_runs_every_pipeline(stored_run):
    result = snakemake(stored_run["workdir"], "-n", "--configfile", str(DEFAULT), str(SMOKE),
                       "--config", "use_archive=false", env=stored_run["env"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert pipeline_jobs(result.stdout + result.stderr)["train_consumers"] == 1


@pytest.mark.slow
def test_an_edited_stored_file_is_refused_by_its_sum(stored_run, tmp_path):
    workdir = Path(shutil.copytree(stored_run["workdir"], tmp_path / "edited", symlinks=True))
    plan = stored_run["plan"]
    evaluation = stored_dir(workdir / "results" / "smoke", "open", 0) / "learned" / "evaluation.json"
    evaluation.write_text(evaluation.read_text().replace("1", "2", 1))
    root = workdir / "results" / "smoke"
    assert why_not_usable(plan, root, "open", 0) == \
        "learned/evaluation.json does not match the sha256 its manifest records"
    (stored_dir(root, "open", 0) / "manifest.json").unlink()
    assert why_not_usable(plan, root, "open", 0) == "its manifest.json is missing or unreadable"


def test_storing_an_unfinished_pipeline_names_the_missing_file(tmp_path):
    plan = WorkflowPlan(merged(DEFAULT, SMOKE))
    pipe = tmp_path / "results" / "smoke" / "open" / "seed0"
    first = pipeline_files(plan, "open")[0]
    for name in pipeline_files(plan, "open")[1:]:
        (pipe / name).parent.mkdir(parents=True, exist_ok=True)
        (pipe / name).write_text("x")
    with pytest.raises(ConfigError, match=f"{first} is missing \\(1 files in all\\)"):
        store(plan, tmp_path / "results" / "smoke", tmp_path / "logs" / "smoke", "open", 0)
    assert not (tmp_path / "results" / "smoke" / "archive").exists()


def test_the_command_before_any_run_says_to_run_the_workflow(tmp_path):
    result = archive_cli(tmp_path, "--configfile", str(SMOKE))
    assert result.returncode == 2
    assert result.stderr.strip() == \
        "error: results/smoke/workflow.yaml not found: run the workflow (./run main) before storing its pipelines"


def test_a_pipeline_outside_the_run_is_refused_with_the_allowed_ones(tmp_path):
    (tmp_path / "results" / "smoke").mkdir(parents=True)
    (tmp_path / "results" / "smoke" / "workflow.yaml").write_text(yaml.safe_dump(merged(DEFAULT, SMOKE)))
    result = archive_cli(tmp_path, "--configfile", str(SMOKE), "--pipeline", "open/3")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: invalid --pipeline 'open/3'; allowed: open/0"


def test_use_archive_takes_true_or_false_also_as_command_line_text():
    with pytest.raises(ConfigError, match=r"use_archive='maybe'; allowed: true or false"):
        WorkflowPlan({**merged(DEFAULT, SMOKE), "use_archive": "maybe"})
    assert WorkflowPlan({**merged(DEFAULT, SMOKE), "use_archive": "false"}).use_archive is False
    assert WorkflowPlan({**merged(DEFAULT, SMOKE), "use_archive": "True"}).use_archive is True
    assert WorkflowPlan({**merged(DEFAULT, SMOKE), "ablation": "false"}).ablation is False


def test_every_committed_stored_pipeline_stands_in_for_the_default_profile():
    """A change to the default profile that alters a stored pipeline's configs makes its committed results
    those of another experiment: this fails until the pipeline is run again and stored, or its copy removed."""
    root = ROOT / "results" / "default"
    plan = WorkflowPlan(merged(DEFAULT))
    for directory in sorted(archive_root(root).glob("*/seed*")):
        economy, seed = directory.parent.name, int(directory.name.removeprefix("seed"))
        assert (economy, seed) in plan.pipelines(), directory
        assert why_not_usable(plan, root, economy, seed) is None, directory


def test_first_difference_names_the_dotted_key():
    a = {"training": {"num_envs": 16, "lr": {"consumer": 1e-3}}, "seed": 0}
    assert first_difference(a, a) is None
    assert first_difference(a, {**a, "seed": 1}) == "seed"
    assert first_difference(a, {**a, "training": {"num_envs": 16, "lr": {"consumer": 1e-4}}}) == \
        "training.lr.consumer"
    assert first_difference(a, {"training": a["training"]}) == "seed"


def test_jobs_summary_by_hand():
    # Jobs of 10 s ending at 100, 30 s ending at 120 and 5 s ending at 105: they span 90 s to 120 s.
    jobs = [Job(10.0, 100.0), Job(30.0, 120.0), Job(5.0, 105.0)]
    assert jobs_summary(jobs) == {"dag": 30.0, "jobs_sum": 45.0, "jobs": 3, "longest_job": 30.0}
    assert jobs_summary([]) == {"dag": None, "jobs_sum": None, "jobs": 0, "longest_job": None}


def test_the_commit_that_ran_a_pipeline_is_recorded_and_a_modified_checkout_says_so(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True,
                              env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                   "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout.strip()

    git("init", "-q")
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "summary.md").write_text("old\n")
    git("add", "code.py", "results/summary.md")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD")
    logs = tmp_path / "logs"
    (tmp_path / "results" / "summary.md").write_text("new\n")  # results change as the workflow runs
    record_commit(logs, [("open", 0)], tmp_path / "results")
    assert run_commits(logs, "open", 0) == [head]
    (tmp_path / "code.py").write_text("a = 2\n")
    record_commit(logs, [("open", 0), ("open", 1)], tmp_path)
    assert run_commits(logs, "open", 0) == [head, f"{head}+modified"]
    assert run_commits(logs, "open", 1) == [f"{head}+modified"]
    assert run_commits(logs, "closed", 0) == []
