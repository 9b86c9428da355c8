"""What the paper profile costs on GPUs: iterations from its plan, times from a measurement and two assumptions.

Counted (exact): every rule's training iterations (episodes of 128 economies) from the paper profile's
plan, and the matmul FLOPs of one iteration from the network shapes (benchmarks/train_throughput.py:
the update's epochs, plus the rollout's forward pass, one third of an epoch).

Measured (here, on a CPU): the CPU time of one training iteration of the paper's economy and networks
with a single economy (E=1), where the arithmetic is 1/128 of the paper's and what remains is the
per-iteration work of Python, TorchRL and the operator calls. Process CPU time, not wall time, so
other jobs on a shared machine do not inflate it.

Assumed (no GPU here): on a GPU that fixed part costs what it costs on this CPU (each operator call is
dispatched from Python there too, as a kernel launch instead of a CPU loop), and the arithmetic runs at
`--gpu-tflops` (default 5 TFLOP/s: a quarter of an A100's fp32 peak, for 128-wide layers). The economy
itself is not counted (under 5% of an iteration on a CPU, docs/rerun.md; less with the cuda backend).

    python benchmarks/cluster_cost.py                    # the estimate (about a minute)
    python benchmarks/cluster_cost.py --gpu-tflops 10    # another assumption
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from train_throughput import Bench, update_flops  # noqa: E402

from pipeline.orchestration.plan import ABLATION, WorkflowPlan  # noqa: E402

CONFIG = ROOT / "workflow" / "config"


def paper_plan() -> WorkflowPlan:
    """default.yaml with paper.yaml merged over it, as `--configfile workflow/config/paper.yaml` does."""
    from snakemake.utils import update_config

    config = yaml.safe_load((CONFIG / "default.yaml").read_text())
    update_config(config, yaml.safe_load((CONFIG / "paper.yaml").read_text()))
    return WorkflowPlan(config)


def rule_jobs(plan: WorkflowPlan) -> dict[str, tuple[int, int]]:
    """rule -> (jobs, training iterations of each job) over the whole DAG; evaluations do not train."""
    experiment = plan.experiment_dict(*plan.pipelines()[0], "best_response")
    stages = {s["name"]: s["episodes"] for s in experiment["curriculum"]["stages"]}
    pipelines = plan.pipelines()
    rules = {f"train_{stage}": (sum(len(plan.branch_of_stage(stage, economy)) for economy, _ in pipelines), episodes)
             for stage, episodes in stages.items()}
    if plan.ablation:
        rules[f"train_{ABLATION}"] = (len(pipelines), sum(stages.values()))
    for group in plan.best_response_types:  # one job per probe (learner, power check, agent alone)
        jobs = len(pipelines) * len(plan.best_response_branches) * len(plan.best_response_probes(group))
        rules[f"best_response_{group}"] = (jobs, experiment["best_response"]["episodes"])
    return rules


def fixed_seconds(repeats: int) -> float:
    """Median CPU seconds of one iteration of the paper economy with one economy (E=1), one thread."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    bench = Bench(1)
    bench.iteration()  # warm-up
    samples = []
    for _ in range(repeats):
        began = time.process_time()
        bench.iteration()
        samples.append(time.process_time() - began)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu-tflops", type=float, default=5.0, help="assumed sustained fp32 rate on the GPU")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    plan = paper_plan()
    envs = plan.experiment_dict(*plan.pipelines()[0], "train")["training"]["num_envs"]
    overhead = fixed_seconds(args.repeats)
    session = Bench(1).session
    update = sum(update_flops(session, envs).values())
    flop = update * (1 + 1 / (3 * session.learners["consumer"].epochs))  # + the rollout's forward pass
    per_iteration = overhead + flop / (args.gpu_tflops * 1e12)
    print(f"paper profile: {len(plan.pipelines())} pipelines (economy x seed), {len(plan.branches)} branches, "
          f"{envs} economies per iteration")
    print(f"measured: {overhead * 1e3:.0f} ms CPU per iteration at E=1 (the fixed part); "
          f"counted: {flop / 1e9:.0f} GFLOP per iteration at E={envs}")
    print(f"assumed: fixed part as measured, arithmetic at {args.gpu_tflops:g} TFLOP/s "
          f"-> {per_iteration:.3f} s per iteration on one GPU")
    print(f"{'rule':<26} {'jobs':>5} {'iterations':>11} {'GPU-hours':>10} {'hours per job':>14}")
    total_iterations = total_hours = 0.0
    for rule, (jobs, iterations) in rule_jobs(plan).items():
        hours = jobs * iterations * per_iteration / 3600
        total_iterations, total_hours = total_iterations + jobs * iterations, total_hours + hours
        print(f"{rule:<26} {jobs:>5} {jobs * iterations:>11,} {hours:>10,.0f} {hours / jobs:>14.1f}")
    print(f"{'total':<26} {'':>5} {total_iterations:>11,.0f} {total_hours:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
