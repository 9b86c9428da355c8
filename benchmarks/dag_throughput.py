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


def pipeline_episodes(plan: WorkflowPlan, economy: str, seed: int) -> dict[str, int]:
    """Episodes each kind of job of one pipeline (economy and seed) runs, as planned."""
    experiment = ExperimentConfig.from_dict(plan.experiment_dict(economy, seed, "best_response"))
    evaluation = ExperimentConfig.from_dict(plan.experiment_dict(economy, seed, "evaluate")).evaluation
    stages = {s.name: s.episodes for s in experiment.curriculum.stages}
    probes = sum(len(plan.best_response_probes(g)) for g in plan.best_response_types)
    return {
        "training": sum(stages[s] for s in plan.prefix_stages)
        + len(plan.branches_of(economy)) * sum(stages[s] for s in plan.branch_stages),
        "ablation": experiment.curriculum.total_episodes if plan.ablation else 0,
        "best_response": len(plan.best_response_branches) * probes * experiment.best_response.episodes,
        "evaluation": len(plan.evaluated_branches(economy)) * evaluation.episodes,
    }


def planned_episodes(plan: WorkflowPlan) -> dict[str, int]:
    """Episodes each kind of job runs for the whole profile, as planned."""
    counts = {"training": 0, "ablation": 0, "best_response": 0, "evaluation": 0}
    for economy, seed in plan.pipelines():
        for kind, episodes in pipeline_episodes(plan, economy, seed).items():
            counts[kind] += episodes
    return counts


def job_time(summary: dict, figure: float | None) -> tuple[float, float | None]:
    """(summed job seconds, the same in iterations of each job's own machine) of a report's DAG.

    A report built from stored pipelines (pipeline.orchestration.archive) has no jobs of its own: each
    pipeline's job seconds come from the run that made it, on its machine, so each is converted with that
    machine's train_throughput figure before they are added."""
    pipelines = summary.get("pipelines") or []
    if not pipelines or all(p["source"] == "this run" for p in pipelines):
        seconds = summary["wall_time_s"]["jobs_sum"]
        return seconds, seconds / figure if figure else None
    seconds, iterations = 0.0, 0.0
    for pipeline in pipelines:
        spent = pipeline["jobs"]["jobs_sum"]
        own = (pipeline.get("machine") or {}).get("train_throughput_s_per_iteration") or figure
        seconds += spent
        iterations = iterations + spent / own if own and iterations is not None else None
    return seconds, iterations


# Modules that moved since a committed profile named them.
MOVED = {"pipeline.equivariant:build": "pipeline.learning.equivariant:build"}


def plan_of(text: str) -> WorkflowPlan:
    for old, new in MOVED.items():
        text = text.replace(old, new)
    return WorkflowPlan(yaml.safe_load(text))


def committed(revision: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def describe(name: str, plan: WorkflowPlan, jobs_sum: float, iterations: float | None) -> dict:
    episodes = planned_episodes(plan)
    total = sum(episodes.values())
    return {"run": name, "episodes": episodes, "planned_episodes": total, "jobs_sum_s": jobs_sum,
            "episodes_per_s": total / jobs_sum, "s_per_iteration": jobs_sum / iterations if iterations else None,
            "episodes_per_iteration_time": total / iterations if iterations else None}


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
    current = describe("this run", plan_of((args.root / "workflow.yaml").read_text()), *job_time(summary, figure))
    old_summary = json.loads(committed(args.baseline, "results/default/summary.json"))
    old_plan = plan_of(committed(args.baseline, "workflow/config/default.yaml"))
    baseline = describe(f"committed {args.baseline}", old_plan, *job_time(old_summary, args.baseline_s_per_iteration))
    for row in (baseline, current):
        scaled = row["episodes_per_iteration_time"]
        print(f"{row['run']:>18}: {row['planned_episodes']:>7,} planned episodes {row['episodes']} in "
              f"{row['jobs_sum_s']:>8,.0f} s of jobs = {row['episodes_per_s']:.2f} episodes/s"
              + (f"; machines {row['s_per_iteration']:.3f} s/iteration (job-weighted) -> {scaled:.2f} episodes per "
                 f"iteration-time"
                 if scaled else "; machine figure unknown"))
    if current["episodes_per_iteration_time"] and baseline["episodes_per_iteration_time"]:
        ratio = current["episodes_per_iteration_time"] / baseline["episodes_per_iteration_time"]
        print(f"\nplanned episodes per iteration-time: {ratio:.2f}x the committed run "
              f"(target {TARGET:.0f}x: {'PASS' if ratio >= TARGET else 'MISS'})")
    for row in (baseline, current):
        # nearly every planned episode is one training iteration of 16 economies, so a run cannot spend much less
        # than one iteration-time per episode unless its machine figure is not the machine it ran on, or planned
        # episodes did not run (branches that stop on collapse)
        if row["s_per_iteration"] and row["jobs_sum_s"] < row["planned_episodes"] * row["s_per_iteration"]:
            print(f"warning: {row['run']} spent {row['jobs_sum_s'] / row['planned_episodes']:.3f} s of jobs per "
                  f"planned episode, less than its machine figure {row['s_per_iteration']:.3f} s per iteration: "
                  "either the figure is not its machine's (then its scaled rate is overstated and a ratio against "
                  "it understated) or planned episodes did not run (collapsed branches stop early)")
    raw = current["episodes_per_s"] / baseline["episodes_per_s"]
    print(f"episodes per second of jobs, machines as they were: {raw:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
