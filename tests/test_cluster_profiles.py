"""The SLURM workflow profiles against the workflow and against docs/cluster.md, without a cluster.

Every rule that runs on a node has its request in both profiles; the profiles leave the keys a site
profile owns alone; the document's table is what the profiles say, and its iteration counts are what
the paper profile's plan implies. tests/test_slurm.py runs the profiles on a cluster.
"""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from pipeline.orchestration.plan import WorkflowPlan

from workflow_support import DEFAULT, ROOT, SMOKE, expected_jobs, merged

PROFILES = {name: ROOT / "workflow" / "profiles" / name / "config.yaml" for name in ("slurm", "slurm-gpu")}
PAPER = ROOT / "workflow" / "config" / "paper.yaml"
DOC = ROOT / "docs" / "cluster.md"
LOCAL_RULES = {"resolve_config", "workflow_config", "all"}


def profile(name: str) -> dict:
    return yaml.safe_load(PROFILES[name].read_text())


@pytest.mark.parametrize("name, profiles", [("slurm", [(DEFAULT, SMOKE), (DEFAULT,)]),
                                            ("slurm-gpu", [(DEFAULT, PAPER)])])
def test_every_rule_that_runs_on_a_node_has_its_request(name, profiles):
    rules = [set(expected_jobs(WorkflowPlan(merged(*configs)))) - LOCAL_RULES for configs in profiles]
    requests = profile(name)["set-resources"]
    assert set(requests) == set.union(*rules)  # each rule of the profiles it serves, and nothing else
    assert all({"mem_mb", "runtime"} <= set(r) for r in requests.values())


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_leave_the_site_profiles_keys_alone(name):
    """Snakemake takes each key from one profile only, the workflow profile first (docs/cluster.md)."""
    settings = profile(name)
    assert settings["executor"] == "slurm"
    assert not {"default-resources", "config"} & set(settings)
    assert settings["retries"] >= 1  # a job stopped by SLURM is submitted again and resumes
    assert settings["slurm-status-command"] == "squeue"  # sacct's "CANCELLED by <uid>" would hang the workflow


def test_only_the_gpu_profile_asks_for_gpus_and_only_for_rules_that_run_the_economy():
    assert not any("gpu" in r for r in profile("slurm")["set-resources"].values())
    gpu = {rule for rule, r in profile("slurm-gpu")["set-resources"].items() if r.get("gpu")}
    assert gpu == set(profile("slurm-gpu")["set-resources"]) - {"report", "machine"}


def test_the_documents_table_is_what_the_profiles_request():
    threads = {"slurm": merged(DEFAULT, SMOKE)["threads_per_job"],
               "slurm-gpu": merged(DEFAULT, PAPER)["threads_per_job"]}
    assert merged(DEFAULT)["threads_per_job"] == threads["slurm"]

    def cell(name: str, rule: str) -> str:
        r = profile(name)["set-resources"][rule]
        cpus = 1 if rule in ("report", "machine") else threads[name]  # their own threads: 1 (machine: on a cluster)
        parts = [f"{cpus} CPU" + ("s" if cpus > 1 else "")] + ([f"{r['gpu']} GPU"] if r.get("gpu") else [])
        return ", ".join(parts + [f"{r['mem_mb']} MB", f"{r['runtime']} min"])

    rows = re.findall(r"^\| (\w+) \| (.+?) \| (.+?) \|$", DOC.read_text(), re.M)
    table = {rule: (cpu, gpu) for rule, cpu, gpu in rows if rule != "rule"}
    assert table == {rule: (cell("slurm", rule), cell("slurm-gpu", rule)) for rule in profile("slurm")["set-resources"]}


def test_the_documents_cost_table_counts_the_paper_profiles_iterations():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from cluster_cost import paper_plan, rule_jobs
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rows = re.findall(r"^(\w+)\s+(\d+)\s+([\d,]+)\s+\d+\s+[\d.]+$", DOC.read_text(), re.M)
    shown = {rule: (int(jobs), int(iterations.replace(",", ""))) for rule, jobs, iterations in rows}
    counted = {rule: (jobs, jobs * each) for rule, (jobs, each) in rule_jobs(paper_plan()).items()}
    assert shown == counted
    total = re.search(r"^total\s+([\d,]+)\s+\d+$", DOC.read_text(), re.M)
    assert int(total.group(1).replace(",", "")) == sum(i for _, i in counted.values())


def test_the_document_counts_the_smoke_profiles_slurm_jobs():
    jobs = sum(n for rule, n in expected_jobs(WorkflowPlan(merged(DEFAULT, SMOKE))).items() if rule not in LOCAL_RULES)
    assert f"The smoke profile runs the whole DAG on a tiny economy: {jobs} SLURM jobs" in DOC.read_text()
