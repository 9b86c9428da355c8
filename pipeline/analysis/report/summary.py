"""`summary.json`: every number of the report, computed from the files the workflow wrote.

The markdown is rendered from this dictionary alone, so any number a reader sees is here, including the
profile's setup and the paper's reference values and the report's thresholds that the text quotes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ...config import GROUPS
from ...orchestration.plan import ABLATION
from .epsilon import (
    PAPER_EPSILON_BOUND,
    TRAINING_WINDOW_CAP,
    TRAINING_WINDOW_FRACTION,
    TRAINING_WINDOW_MIN,
    epsilon_by_branch,
)
from .firms import IDLE_FIRM_WORKERS, IGNORED_WAGE_RESPONSE, firms_summary
from .plausibility import LIVE_RUN_PRODUCTION, plausibility
from .results import Results, fixed_rate
from .welfare import OUTCOMES, PAPER_FIXED_RATES, PAPER_PER_STEP, ablation, outcomes, rewards_per_step, welfare_tables


def wall_time(logs: Path) -> dict:
    """The DAG's wall time from the benchmark records: each job ran from (mtime - s) to its mtime."""
    jobs = []
    for path in sorted(logs.rglob("*.benchmark.tsv")):
        with path.open() as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows:
            continue
        seconds = float(rows[-1]["s"])
        end = path.stat().st_mtime
        jobs.append((end - seconds, end, seconds))
    if not jobs:
        return {"dag": float("nan"), "jobs_sum": float("nan"), "jobs": 0}
    return {
        "dag": max(j[1] for j in jobs) - min(j[0] for j in jobs),
        "jobs_sum": sum(j[2] for j in jobs),
        "jobs": len(jobs),
        "longest_job": max(j[2] for j in jobs),
    }


def pipeline_summary(results: Results, economy: str, seed: int | None) -> dict:
    """Every table of the report for one seed, or over all seeds (seed None)."""
    plan = results.plan
    tables = welfare_tables(results, economy, seed)
    summary: dict[str, Any] = {
        "welfare": tables["welfare"],
        "outcomes": {branch: outcomes(results, economy, seed, branch) for branch in plan.evaluated_branches()},
    }
    if "welfare_consumer_only" in tables:
        summary["welfare_consumer_only"] = tables["welfare_consumer_only"]
    epsilon = epsilon_by_branch(results, economy, seed)
    summary["epsilon_by_branch"] = epsilon
    summary["epsilon"] = epsilon.get("learned", next(iter(epsilon.values()), {}))
    if plan.ablation:
        summary["ablation"] = ablation(summary["outcomes"], ABLATION)
    summary["learned_per_step"] = rewards_per_step(summary["outcomes"].get("learned", {}), results.episode_length)
    return summary


def economy_summary(results: Results, economy: str) -> dict:
    plan = results.plan
    firms = firms_summary(results, economy)
    return {
        "seeds": {str(seed): pipeline_summary(results, economy, seed) for seed in plan.seeds},
        "over_seeds": pipeline_summary(results, economy, None),
        **{key: value for key, value in firms.items() if key != "ignored_firms_by_seed"},
        "plausibility": plausibility(results, economy),
        "ignored_firms_by_seed": firms["ignored_firms_by_seed"],
    }


def setup(results: Results) -> dict:
    """The profile's curriculum, evaluation and best-response settings the report's text describes."""
    plan, br = results.plan, results.best_response
    return {
        "curriculum": [{"name": s.name, "episodes": s.episodes, "train": list(s.train)} for s in results.stages],
        "prefix_stages": list(plan.prefix_stages),
        "evaluation": {"episodes": results.evaluation.episodes, "num_envs": results.evaluation.num_envs},
        "best_response": {"episodes": br.episodes, "algorithm": br.algorithm, "eval_episodes": br.eval_episodes},
        "ablation_branch": ABLATION if plan.ablation else None,
        "fixed_tax_by_branch": {branch: fixed_rate(plan, branch) for branch in plan.evaluated_branches()},
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
        "training_window": {"fraction": TRAINING_WINDOW_FRACTION, "min": TRAINING_WINDOW_MIN,
                            "cap": TRAINING_WINDOW_CAP},
    }


def definitions(results: Results) -> dict:
    first_stage_of = {g: next((s.name for s in results.stages if g in s.train), None) for g in GROUPS}
    return {
        "welfare": "total = sum of consumer episode utilities + firm_welfare_weight x sum of firm episode profits;"
                   " consumer_only = sum of consumer episode utilities; one sample per economy-episode",
        "ci95": "normal-approximation 95% interval of the mean over economy-episodes (one seed); over several "
                "seeds, mean of the seed means with a Student-t interval from their spread",
        "epsilon.absolute": "best-response gain: type's mean reward after minus before the best response "
                            "(evaluation rollouts), interval from both evaluations' intervals",
        "epsilon.relative": "absolute / training gain; training gain = mean reward over the last W episodes "
                            "of the final stage minus mean reward over the first W episodes of the first "
                            f"stage in which the type trained ({first_stage_of}); W = {TRAINING_WINDOW_FRACTION:g} x "
                            f"the stage's episodes, at least {TRAINING_WINDOW_MIN}, at most {TRAINING_WINDOW_CAP}; "
                            "undefined (null) when the training gain is not positive; "
                            "over seeds: the worst (largest) seed, as the paper's Table 3",
        "epsilon.relative_vs_untrained": "absolute / (type's reward with its trained network minus with a "
                                         "freshly initialized one), both measured by the best-response rule "
                                         "under its evaluation conditions (full disutility, no masks)",
        "wall_time_s.dag": "latest job end minus earliest job start over the benchmarked jobs (training, "
                           "evaluation, best response); jobs_sum adds their wall times",
    }


def build_summary(results: Results, logs: Path) -> dict:
    plan = results.plan
    economies = {economy: economy_summary(results, economy) for economy in plan.economies}
    primary = "open" if "open" in plan.economies else next(iter(plan.economies))
    head = economies[primary]["over_seeds"]
    return {
        "profile": plan.profile,
        "primary_economy": primary,
        "economies_list": list(plan.economies),
        "seeds": list(plan.seeds),
        "episode_length": results.episode_length,
        "welfare": head["welfare"],
        "welfare_consumer_only": head.get("welfare_consumer_only"),
        "epsilon": head["epsilon"],
        "outcomes": head["outcomes"],
        "ablation": head.get("ablation"),
        "ratio_learned_to_best_fixed": head["welfare"].get("ratio_to_best_fixed"),
        "ci_overlap_learned_best_fixed": head["welfare"].get("ci_overlap_with_best_fixed"),
        "plausibility": economies[primary]["plausibility"],
        "economies": economies,
        "wall_time_s": wall_time(logs),
        "definitions": definitions(results),
        "setup": setup(results),
        "paper_reference": paper_reference(),
        "thresholds": thresholds(),
    }
