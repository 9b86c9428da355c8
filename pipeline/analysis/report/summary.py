"""`summary.json`: every number of the report, computed from the files the workflow wrote.

The markdown is rendered from this dictionary alone, so any number a reader sees is here, including the
profile's setup, the paper's reference values, the report's thresholds and the definitions the text quotes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...orchestration.archive import benchmark_jobs, commit_of, jobs_summary, read_manifest, run_commits
from ...orchestration.plan import ABLATION
from .definitions import definitions
from .epsilon import PAPER_EPSILON_BOUND, epsilon
from .firms import IDLE_FIRM_WORKERS, IGNORED_WAGE_RESPONSE, firms_summary
from .plausibility import LIVE_RUN_PRODUCTION, plausibility
from .results import Results, fixed_rates
from .taxgrid import tax_grid_table
from .welfare import (
    OUTCOMES,
    PAPER_FIXED_RATES,
    PAPER_PER_STEP,
    ablation,
    learned_tax_rates,
    outcomes,
    rewards_per_step,
    welfare_comparisons,
)

# What a machine record (`<root>/machine.json`, written by the workflow where it measures the machine) holds.
MACHINE_KEYS = ("cpu_model", "native_bf16", "train_throughput_s_per_iteration", "threads")


def wall_time(logs: Path) -> dict:
    """This run's wall time from its benchmark records: each job ran from (mtime - s) to its mtime."""
    return jobs_summary(benchmark_jobs(logs))


def machine(root: Path) -> dict | None:
    """The machine record beside the results, its known keys always present (null where it lacks them);
    None when the workflow wrote none."""
    path = root / "machine.json"
    return machine_record(json.loads(path.read_text())) if path.exists() else None


def machine_record(data: dict | None) -> dict | None:
    """A machine record with its known keys always present (null where it lacks them)."""
    return None if data is None else {**{key: None for key in MACHINE_KEYS}, **data}


def pipeline_sources(results: Results, logs: Path) -> list[dict]:
    """Where each pipeline's numbers come from: this run, or a stored copy with the commit, machine and job
    times of the run that made it."""
    entries = []
    checkout = commit_of(results.root)
    for economy, seed in results.plan.pipelines():
        if (economy, seed) in results.stored:
            manifest = read_manifest(results.root, economy, seed)
            entry = {"source": "archive", "commit": manifest.get("commit"),
                     "commits": manifest.get("commits", [manifest.get("commit")]),
                     "stored_at": manifest.get("stored_at"),
                     "machine": machine_record(manifest.get("machine")),
                     "jobs": manifest["jobs"]}
        else:
            commits = run_commits(logs, economy, seed) or [checkout]
            entry = {"source": "this run", "commit": commits[-1], "commits": commits, "stored_at": None,
                     "machine": machine(results.root), "jobs": wall_time(Path(logs) / economy / f"seed{seed}")}
        entries.append({"economy": economy, "seed": seed, **entry})
    return entries


def economy_summary(results: Results, economy: str) -> dict:
    """Every table of the report for one economy, per seed and over its seeds."""
    plan = results.plan
    outs = {branch: outcomes(results, economy, branch) for branch in plan.evaluated_branches(economy)}
    seeds = results.seeds(economy)
    summary: dict[str, Any] = {
        "seeds": [str(seed) for seed in seeds],  # as the keys of every per-seed map
        "several_seeds": len(seeds) > 1,
        "outcomes": outs,
        "welfare": welfare_comparisons(results, economy, outs),
        "tax_grid": tax_grid_table(results, economy, outs),
        "learned_tax_rates": learned_tax_rates(outs),
        "epsilon": epsilon(results, economy),
        "learned_per_step": rewards_per_step(outs["learned"], results.episode_length),
        **firms_summary(results, economy),
        "plausibility": plausibility(results, outs, economy),
    }
    if plan.ablation:
        summary["ablation"] = ablation(outs, ABLATION)
    return summary


def setup(results: Results) -> dict:
    """The profile's curriculum, evaluation and best-response settings the report's text describes."""
    plan, br = results.plan, results.best_response
    return {
        "curriculum": [{"name": s.name, "episodes": s.episodes, "train": list(s.train)} for s in results.stages],
        "prefix_stages": list(plan.prefix_stages),
        "evaluation": {"episodes": results.evaluation.episodes, "num_envs": results.evaluation.num_envs},
        "best_response": {"episodes": br.episodes, "eval_episodes": br.eval_episodes,
                          "learners": list(plan.best_response_learners),
                          "probes": {g: plan.best_response_probes(g) for g in plan.best_response_types},
                          "power": plan.best_response_power, "individual": list(plan.best_response_individual)},
        "ablation_branch": ABLATION if plan.ablation else None,
        "equal_rate_list": list(plan.fixed_taxes),
        "tax_grid": plan.tax_grid,
        "branch_rates": {branch: fixed_rates(plan, branch) for branch in plan.branches},
        "outcome_names": list(OUTCOMES),
    }


def paper_reference() -> dict:
    """The paper's values the report compares with (its Table 3 bounds, fixed rates and per-step levels)."""
    return {"fixed_rates": list(PAPER_FIXED_RATES), "per_step": dict(PAPER_PER_STEP),
            "epsilon_bound": dict(PAPER_EPSILON_BOUND)}


def thresholds() -> dict:
    """The report's own cut-offs, quoted in its text."""
    return {
        "idle_firm_workers": IDLE_FIRM_WORKERS,
        "ignored_wage_response": IGNORED_WAGE_RESPONSE,
        "live_run_production": LIVE_RUN_PRODUCTION,
    }


def build_summary(results: Results, logs: Path) -> dict:
    plan = results.plan
    economies = {economy: economy_summary(results, economy) for economy in plan.economies}
    return {
        "profile": plan.profile,
        "primary_economy": "open" if "open" in plan.economies else next(iter(plan.economies)),
        "economies_list": list(plan.economies),
        "seeds": {economy: results.seeds(economy) for economy in plan.economies},
        "episode_length": results.episode_length,
        "economies": economies,
        "machine": machine(results.root),
        "wall_time_s": wall_time(logs),
        "pipelines": pipeline_sources(results, logs),
        "definitions": definitions(results),
        "setup": setup(results),
        "paper_reference": paper_reference(),
        "thresholds": thresholds(),
    }
