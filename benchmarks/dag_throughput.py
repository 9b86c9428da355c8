"""Episodes per second of a whole DAG, against a committed earlier DAG, on a machine-independent scale.

    python benchmarks/dag_throughput.py --root results/default
    python benchmarks/dag_throughput.py --root results/default --baseline eaa40be --baseline-s-per-iteration 0.93

A DAG's planned episodes (every training stage, ablation, best-response search and evaluation the profile
asks for; a fixed-tax branch stopped early for collapse counts its planned episodes, since its result stands
for them) divided by the summed job time gives episodes per second. Machines differ 5-7x per iteration, so
the figure is also given in units of the machine's own train_throughput iteration (`machine.json` of the run,
or --s-per-iteration): planned episodes per iteration-time. The ratio of two runs on that scale is what the
code and the DAG's design gained, whatever machines ran them. Target: 4x the committed run of eaa40be.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipeline.config import ExperimentConfig  # noqa: E402
from pipeline.orchestration.plan import WorkflowPlan  # noqa: E402

TARGET = 4.0


def planned_episodes(plan: WorkflowPlan) -> dict[str, int]:
    """Episodes each kind of job runs for the whole profile, as planned."""
    counts = {"training": 0, "ablation": 0, "best_response": 0, "evaluation": 0}
    for economy, seed in plan.pipelines():
        experiment = ExperimentConfig.from_dict(plan.experiment_dict(economy, seed, "best_response"))
        evaluation = ExperimentConfig.from_dict(plan.experiment_dict(economy, seed, "evaluate")).evaluation
        stages = {s.name: s.episodes for s in experiment.curriculum.stages}
        counts["training"] += sum(stages[s] for s in plan.prefix_stages)
        counts["training"] += len(plan.branches_of(economy)) * sum(stages[s] for s in plan.branch_stages)
        if plan.ablation:
            counts["ablation"] += experiment.curriculum.total_episodes
        probes = sum(len(plan.best_response_probes(g)) for g in plan.best_response_types)
        counts["best_response"] += len(plan.best_response_branches) * probes * experiment.best_response.episodes
        counts["evaluation"] += len(plan.evaluated_branches(economy)) * evaluation.episodes
    return counts


# Modules that moved since a committed profile named them.
MOVED = {"pipeline.equivariant:build": "pipeline.learning.equivariant:build"}


def plan_of(text: str) -> WorkflowPlan:
    for old, new in MOVED.items():
        text = text.replace(old, new)
    return WorkflowPlan(yaml.safe_load(text))


def committed(revision: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def describe(name: str, plan: WorkflowPlan, jobs_sum: float, s_per_iteration: float | None) -> dict:
    episodes = planned_episodes(plan)
    total = sum(episodes.values())
    row = {"run": name, "episodes": episodes, "planned_episodes": total, "jobs_sum_s": jobs_sum,
           "episodes_per_s": total / jobs_sum, "s_per_iteration": s_per_iteration}
    row["episodes_per_iteration_time"] = row["episodes_per_s"] * s_per_iteration if s_per_iteration else None
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT / "results" / "default",
                        help="a DAG's results: workflow.yaml, summary.json (wall_time_s) and machine.json")
    parser.add_argument("--s-per-iteration", type=float, default=None,
                        help="the run's machine figure when machine.json is absent")
    parser.add_argument("--baseline", default="eaa40be", help="commit of the earlier DAG's report")
    parser.add_argument("--baseline-s-per-iteration", type=float, default=0.93,
                        help="train_throughput's figure on the earlier DAG's machine (AVX2, fp32, one thread)")
    args = parser.parse_args(argv)

    summary = json.loads((args.root / "summary.json").read_text())
    machine_path = args.root / "machine.json"
    machine = json.loads(machine_path.read_text()) if machine_path.exists() else summary.get("machine") or {}
    figure = args.s_per_iteration or machine.get("train_throughput_s_per_iteration")
    current = describe("this run", plan_of((args.root / "workflow.yaml").read_text()),
                       summary["wall_time_s"]["jobs_sum"], figure)
    old_summary = json.loads(committed(args.baseline, "results/default/summary.json"))
    old_plan = plan_of(committed(args.baseline, "workflow/config/default.yaml"))
    baseline = describe(f"committed {args.baseline}", old_plan, old_summary["wall_time_s"]["jobs_sum"],
                        args.baseline_s_per_iteration)
    for row in (baseline, current):
        scaled = row["episodes_per_iteration_time"]
        print(f"{row['run']:>18}: {row['planned_episodes']:>7,} planned episodes {row['episodes']} in "
              f"{row['jobs_sum_s']:>8,.0f} s of jobs = {row['episodes_per_s']:.2f} episodes/s"
              + (f"; machine {row['s_per_iteration']:.3f} s/iteration -> {scaled:.2f} episodes per iteration-time"
                 if scaled else "; machine figure unknown"))
    if current["episodes_per_iteration_time"] and baseline["episodes_per_iteration_time"]:
        ratio = current["episodes_per_iteration_time"] / baseline["episodes_per_iteration_time"]
        print(f"\nplanned episodes per iteration-time: {ratio:.2f}x the committed run "
              f"(target {TARGET:.0f}x: {'PASS' if ratio >= TARGET else 'MISS'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
