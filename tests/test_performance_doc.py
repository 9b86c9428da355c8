"""The workload docs/performance.md and README.md quote is the default profile's, as its plan counts it.

The planned episodes are counted here from the profile by hand (stages, branches, probes, evaluation),
not with the benchmark's own counter, and checked against both the documents and that counter.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import dag_throughput  # noqa: E402

PERFORMANCE = (ROOT / "docs" / "performance.md").read_text()
README = (ROOT / "README.md").read_text()
PROFILE = yaml.safe_load((ROOT / "workflow" / "config" / "default.yaml").read_text())


def by_hand() -> dict[str, int]:
    """Episodes per kind of job: every pipeline (economy x its seeds) runs the same plan."""
    experiment = PROFILE["experiment"]
    stages = {s["name"]: s["episodes"] for s in experiment["curriculum"]["stages"]}
    pipelines = sum(len(PROFILE.get("economy_seeds", {}).get(e, PROFILE["seeds"])) for e in PROFILE["economies"])
    grid = PROFILE["tax_grid"]
    equal = {(r, r) for r in PROFILE["fixed_taxes"]}
    fixed = equal | {(i, c) for i in grid["income"] for c in grid["corporate"]}
    branches = 1 + len(fixed) + int(PROFILE["consumer_welfare_branch"])  # learned, every fixed pair, consumer welfare
    prefix = stages["consumers"] + stages["firms"]
    after_prefix = stages["taxes"] + stages["government"]
    learners = len(experiment["best_response"]["learners"])
    probes = len(PROFILE["best_response_types"]) * (learners + int(PROFILE["best_response_power"]))
    probes += len(PROFILE["best_response_individual"])  # one deviating agent per listed type
    return {
        "training": pipelines * (prefix + branches * after_prefix),
        "ablation": pipelines * sum(stages.values()),
        "best_response": pipelines * probes * experiment["best_response"]["episodes"],
        "evaluation": pipelines * (branches + 1) * experiment["evaluation"]["episodes"],  # + the ablation
    }


def test_the_hand_count_is_the_plans():
    plan = dag_throughput.WorkflowPlan(PROFILE)
    assert dag_throughput.planned_episodes(plan) == by_hand()


def test_the_documents_quote_the_default_profiles_planned_episodes():
    counts = by_hand()
    total = sum(counts.values())
    assert (f"The profile plans {total:,} episodes (training {counts['training']:,}, ablation "
            f"{counts['ablation']:,}, best responses {counts['best_response']:,},\nevaluation "
            f"{counts['evaluation']:,})") in PERFORMANCE
    assert f"plans\n{total:,} episodes of 16 economies" in README


def test_stored_pipelines_are_converted_with_their_own_machines_figures():
    """A report built from stored pipelines adds each one's job seconds in iterations of the machine that ran it:
    100 s at 0.5 s per iteration and 300 s at 0.25 s are 200 + 1,200 iterations, not 400 s / one figure."""
    summary = {"wall_time_s": {"jobs_sum": None},
               "pipelines": [{"source": "archive", "jobs": {"jobs_sum": 100.0},
                              "machine": {"train_throughput_s_per_iteration": 0.5}},
                             {"source": "archive", "jobs": {"jobs_sum": 300.0},
                              "machine": {"train_throughput_s_per_iteration": 0.25}}]}
    assert dag_throughput.job_time(summary, figure=None) == (400.0, 1400.0)
    ran_here = {"wall_time_s": {"jobs_sum": 90.0}, "pipelines": [{"source": "this run", "jobs": {"jobs_sum": 90.0}}]}
    assert dag_throughput.job_time(ran_here, figure=0.3) == (90.0, 300.0)
