"""The workflow on SLURM, as docs/cluster.md runs it, on a one-node cluster this module starts and stops.

Every command of docs/cluster.md in a block marked `# needs a SLURM cluster` runs here as written, in
a working directory that stands for the cluster's shared storage (the repository's workflow/ linked
into it), with the site profile the document describes written to ~/.config (HOME is a temporary
directory): the tracking server, the smoke profile through the SLURM executor, `sacct`, and the paper
profile on GPUs as far as SLURM's side goes (the node advertises a GPU it does not have). The smoke
run must equal the session's local smoke run file for file, every job must have run as a SLURM job,
and the tracking server must hold every rule's child run under its pipeline's parent run. Then a
fault: a training job cancelled with scancel is submitted again by Snakemake and resumes from its
checkpoint, producing what an uninterrupted run produces.

Needs root: it installs SLURM from Debian when missing (slurm_support.py) and the cluster extra into
this environment when missing, and runs the daemons. Elsewhere it skips saying why; under CI=true it
fails instead, because CI must run it.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.config import ExperimentConfig
from pipeline.orchestration.plan import WorkflowPlan

import slurm_support
from mlflow_support import answers, free_port
from workflow_support import (
    DEFAULT,
    ROOT,
    SMOKE,
    assert_complete_tree,
    expected_jobs,
    failure_logs,
    merged,
    pipeline_tree,
    result_differences,
    same,
)

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "cluster.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
CLUSTER_MARK = "# needs a SLURM cluster"
PROFILES = {name: ROOT / "workflow" / "profiles" / name / "config.yaml" for name in ("slurm", "slurm-gpu")}
LOCAL_RULES = {"resolve_config", "workflow_config", "all"}
TIMINGS: dict[str, float] = {}  # reported at the end of the module


# ---------------------------------------------------------------------------------------- the document
def doc_blocks(language: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(DOC.read_text()) if m.group(1) == language]


def cluster_commands() -> list[str]:
    """The commands of docs/cluster.md that need a cluster, in document order."""
    return [line.strip() for block in doc_blocks("bash") if block.startswith(CLUSTER_MARK)
            for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def documented(fragment: str) -> str:
    matches = [c for c in cluster_commands() if fragment in c]
    assert len(matches) == 1, f"docs/cluster.md should show one cluster command with {fragment!r}: {matches}"
    return matches[0]


def doc_yaml(header: str) -> dict:
    block = next(b for b in doc_blocks("yaml") if b.startswith(f"# {header}\n"))
    return yaml.safe_load(block)


def rule_of(comment: str) -> str:
    """The rule of a job from the comment the SLURM executor gives it: rule_<name>[_wildcards_<values>]."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def minutes(limit: str) -> int:
    """SLURM's [D-]HH:MM:SS time limit in minutes."""
    days, _, clock = limit.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return (int(days or 0) * 24 + h) * 60 + m + (s > 0)


def need(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the SLURM test must run in CI, but: {reason}")
    pytest.skip(reason)


def ensure_plugin() -> float:
    """The `cluster` extra (the SLURM executor), installed into this environment when missing."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None:
        return 0.0
    began = time.monotonic()
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["cluster"]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *extra], check=True)
    return time.monotonic() - began


# ---------------------------------------------------------------------------------------- the cluster
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = slurm_support.unavailable()
    if reason:
        need(reason)
    TIMINGS["install SLURM (apt)"] = slurm_support.install()
    TIMINGS["install the cluster extra (pip)"] = ensure_plugin()
    began = time.monotonic()
    cluster = slurm_support.Cluster(tmp_path_factory.mktemp(slurm_support.MARK))
    try:
        cluster.start()
    except RuntimeError as err:
        cluster.stop()
        pytest.fail(str(err))
    TIMINGS["start the cluster"] = time.monotonic() - began
    yield cluster
    cluster.run("scancel", "--user=root", check=False)
    cluster.stop()
    print("\nSLURM test timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in TIMINGS.items()))


@pytest.fixture(scope="module")
def site(cluster, tmp_path_factory):
    """The shared storage, the user's site profile and the tracking server, all as docs/cluster.md says."""
    root = tmp_path_factory.mktemp("shared")
    home, server_dir = root / "home", root / "server-node"
    server_dir.mkdir()
    port = free_port()
    host = socket.gethostname()
    try:
        socket.gethostbyname(host)
    except OSError:
        host = "localhost"
    env = {**cluster.env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "MLFLOW_PORT": str(port),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), cluster.env["PATH"]])}
    env.pop("MLFLOW_TRACKING_URI", None)  # the site profile names the server, nothing else
    uri = f"http://{host}:{port}"
    profile = doc_yaml("~/.config/snakemake/dge-slurm/config.yaml")
    profile["default-resources"].update(slurm_account=slurm_support.ACCOUNT, slurm_partition=slurm_support.PARTITION)
    profile["config"] = [f"tracking_uri={uri}" if item.startswith("tracking_uri=") else item
                         for item in profile["config"]]
    (home / ".config" / "snakemake" / "dge-slurm").mkdir(parents=True)
    (home / ".config" / "snakemake" / "dge-slurm" / "config.yaml").write_text(yaml.safe_dump(profile))

    began = time.monotonic()
    log = (server_dir / "server.log").open("w")
    server = subprocess.Popen(["bash", "-c", documented("mlflow server")], cwd=server_dir, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while not answers(uri):
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the documented tracking server did not come up:\n{(server_dir / 'server.log').read_text()}")
        time.sleep(0.5)
    TIMINGS["start the tracking server"] = time.monotonic() - began
    yield {"root": root, "env": env, "uri": uri}
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
    log.close()


def checkout(site: dict, name: str) -> Path:
    """A working directory on the shared storage with the repository's workflow, as a clone would have it."""
    workdir = site["root"] / name
    workdir.mkdir()
    (workdir / "workflow").symlink_to(ROOT / "workflow")
    return workdir


def shell(command: str, workdir: Path, env: dict, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------------------------------- the smoke profile
@pytest.fixture(scope="module")
def slurm_smoke(site, cluster):
    workdir = checkout(site, "smoke")
    began = time.monotonic()
    done = shell(documented("workflow/config/smoke.yaml"), workdir, site["env"])
    TIMINGS["smoke profile on SLURM"] = time.monotonic() - began
    if done.returncode != 0:
        pytest.fail(f"the smoke profile failed on SLURM:\n{done.stderr[-4000:]}\n{failure_logs(workdir)[-6000:]}")
    return {"workdir": workdir, "output": done.stdout + done.stderr, "jobs": cluster.jobs()}


def test_every_job_of_the_smoke_profile_ran_as_a_slurm_job_with_the_profiles_requests(slurm_smoke):
    plan_jobs = expected_jobs(WorkflowPlan(merged(DEFAULT, SMOKE)))
    remote = {rule: n for rule, n in plan_jobs.items() if rule not in LOCAL_RULES}
    jobs = [j for j in slurm_smoke["jobs"] if j["Comment"].startswith("rule_")]
    # Attempts that failed and were submitted again (the profile's retries) may precede a job's completion.
    completed = [j for j in jobs if j["State"] == "COMPLETED"]
    assert Counter(rule_of(j["Comment"]) for j in completed) == Counter(remote), [j for j in jobs if j not in completed]
    requests = yaml.safe_load(PROFILES["slurm"].read_text())["set-resources"]
    for job in jobs:
        wanted = requests[rule_of(job["Comment"])]
        assert (job["Account"], job["Partition"]) == (slurm_support.ACCOUNT, slurm_support.PARTITION), job
        assert job["AllocCPUS"] == "1" and job["ReqMem"] == f"{wanted['mem_mb']}M", job
        assert minutes(job["Timelimit"]) == wanted["runtime"], job


def test_smoke_results_on_slurm_equal_the_local_run(slurm_smoke, smoke_run):
    assert result_differences(slurm_smoke["workdir"] / "results" / "smoke", smoke_run["results"]) == []


def test_every_rule_logged_its_child_run_under_its_pipeline_on_the_tracking_server(slurm_smoke, site):
    from mlflow.tracking import MlflowClient

    plan = WorkflowPlan(merged(DEFAULT, SMOKE))
    client = MlflowClient(tracking_uri=site["uri"])
    for economy, seed in plan.pipelines():
        assert_complete_tree(client, plan, economy, seed)


def test_documented_sacct_lists_the_jobs_with_their_rules(slurm_smoke, site):
    done = shell(documented("sacct"), slurm_smoke["workdir"], site["env"], timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r"rule_train_consumers_wildcards_open_0_prefix\s+COMPLETED", done.stdout), done.stdout


# ---------------------------------------------------------------------------------------- the paper profile
def test_paper_profile_asks_slurm_for_a_gpu_and_four_cpus_per_economy_rule(site, cluster):
    """The documented paper command, until SLURM has accepted and accounted its first jobs."""
    workdir = checkout(site, "paper")
    (workdir / "cuda.yaml").write_text(yaml.safe_dump(doc_yaml("cuda.yaml")))
    known = {j["JobIDRaw"] for j in cluster.jobs()}
    began = time.monotonic()
    run = subprocess.Popen(["bash", "-c", documented("workflow/config/paper.yaml")], cwd=workdir, env=site["env"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        # the machine record (one CPU, no GPU) goes first; wait for two jobs that run the economy
        while True:
            new = [j for j in cluster.jobs() if j["JobIDRaw"] not in known]
            if sum(rule_of(j["Comment"]) != "machine" for j in new) >= 2:
                break
            assert run.poll() is None and time.monotonic() < deadline, "the paper profile submitted no jobs"
            time.sleep(2)
    finally:
        os.killpg(run.pid, signal.SIGINT)  # Snakemake cancels the jobs it submitted
        try:
            run.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # Snakemake can still be cancelling after 120 s on a loaded machine. This test is about what the
            # jobs ask SLURM for, so it stops Snakemake for good and leaves an empty queue to the next test.
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=60)
        cluster.run("scancel", "--user=root", check=False)
    TIMINGS["paper profile until its first jobs"] = time.monotonic() - began
    requests = yaml.safe_load(PROFILES["slurm-gpu"].read_text())["set-resources"]
    fields = ["JobIDRaw", "Comment", "ReqTRES", "Timelimit"]
    accounted = cluster.run("sacct", "-a", "-X", "-P", "-n", "-j", ",".join(j["JobIDRaw"] for j in new),
                            f"--format={','.join(fields)}")
    for row in (dict(zip(fields, line.split("|"))) for line in accounted.splitlines()):
        wanted = requests[rule_of(row["Comment"])]
        tres = dict(item.split("=") for item in row["ReqTRES"].split(","))
        if rule_of(row["Comment"]) == "machine":  # measures one thread, needs no GPU
            assert (tres["cpu"], tres.get("gres/gpu"), tres["mem"]) == ("1", None, f"{wanted['mem_mb']}M"), row
        else:
            assert (tres["cpu"], tres["gres/gpu"], tres["mem"]) == ("4", str(wanted["gpu"]), f"{wanted['mem_mb']}M"), row
        assert minutes(row["Timelimit"]) == wanted["runtime"], row


# ---------------------------------------------------------------------------------------- a cancelled job
def test_a_training_job_cancelled_by_slurm_resumes_from_its_checkpoint(site, cluster):
    """scancel while the stage runs: Snakemake submits it again and the stage continues where it saved."""
    from mlflow.tracking import MlflowClient

    workdir = checkout(site, "resume")
    episodes = 150
    longer = {"profile": "resume", "experiment": {"training": {"checkpoint_every": 2}, "curriculum": {"stages": [
        {"name": "consumers", "episodes": episodes, "train": ["consumer"]},
        *merged(DEFAULT, SMOKE)["experiment"]["curriculum"]["stages"][1:]]}}}
    (workdir / "longer.yaml").write_text(yaml.safe_dump(longer))
    stage = workdir / "results" / "resume" / "open" / "seed0" / "prefix" / "consumers.pt"
    command = (f"snakemake {stage.relative_to(workdir)} --profile dge-slurm --workflow-profile workflow/profiles/slurm "
               "--configfile workflow/config/smoke.yaml longer.yaml")
    began = time.monotonic()
    with (workdir / "snakemake.log").open("w") as out:
        run = subprocess.Popen(["bash", "-c", command], cwd=workdir, env=site["env"], stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    resume = Path(f"{stage}.resume")
    deadline = time.monotonic() + 600
    while not resume.exists():
        assert run.poll() is None and time.monotonic() < deadline, "the stage never wrote a resume checkpoint"
        time.sleep(0.2)
    queued = [line.split("|") for line in cluster.run("squeue", "-h", "-o", "%i|%j|%k").splitlines()]
    (cancelled, run_id), = [(job, name) for job, name, comment in queued if rule_of(comment) == "train_consumers"]
    cluster.run("scancel", cancelled)
    run.wait(timeout=900)
    TIMINGS["scancel and resubmission"] = time.monotonic() - began
    assert run.returncode == 0, (workdir / "snakemake.log").read_text()[-4000:]

    # This Snakemake run's jobs (they carry its run id as their name): the cancelled one, then its resubmission.
    states = [j["State"].split()[0] for j in cluster.jobs() if j["JobName"] == run_id]
    assert states == ["CANCELLED", "COMPLETED"]
    log = (workdir / "logs" / "resume" / "open" / "seed0" / "prefix" / "consumers.log").read_text()
    resumed = re.search(r"resuming stage 'consumers' at episode (\d+)", log)
    assert resumed and 0 < int(resumed.group(1)) < episodes, log[-2000:]

    # What an uninterrupted run of the same stage produces, run here without SLURM and without tracking.
    reference = workdir / "reference" / "consumers.pt"
    config = stage.parent.parent / "config" / "train.yaml"
    subprocess.run([sys.executable, "-m", "pipeline.learning.train", "--config", str(config), "--stage", "consumers",
                    "--out", str(reference), "--set", "training.threads=1", "--set", "tracking.enabled=false",
                    "--no-progress"], cwd=workdir, check=True, capture_output=True)
    saved, expected = (torch.load(p, weights_only=True) for p in (stage, reference))
    assert same(saved["session"], expected["session"])
    assert stage.with_suffix(".metrics.csv").read_bytes() == reference.with_suffix(".metrics.csv").read_bytes()

    # One MLflow run for the stage, continued by the second job: every logged episode once.
    plan = WorkflowPlan(merged(DEFAULT, SMOKE, workdir / "longer.yaml"))
    _, children = pipeline_tree(MlflowClient(tracking_uri=site["uri"]), plan, "open", 0)
    run_of_stage = [c for c in children if c.data.tags["dge.rule"] == "train:learned:consumers"]
    assert len(run_of_stage) == 1 and run_of_stage[0].info.status == "FINISHED"
    history = MlflowClient(tracking_uri=site["uri"]).get_metric_history(run_of_stage[0].info.run_id, "reward/consumer")
    every = ExperimentConfig.from_dict(plan.experiment_dict("open", 0, "train")).tracking.log_every
    assert sorted(m.step for m in history) == sorted({e for e in range(episodes) if e % every == 0} | {episodes - 1})
    with stage.with_suffix(".metrics.csv").open() as handle:
        rows = {int(r["episode"]): float(r["reward/consumer"]) for r in csv.DictReader(handle)}
    assert all(m.value == pytest.approx(rows[m.step], rel=1e-6) for m in history)
