"""Best-response gaps (the paper's Table 3): how much each type still gains by deviating, against its training gain."""

from __future__ import annotations

from typing import Any

import numpy as np

from .results import Results, fixed_rate
from .stats import across_seeds, finite, includes_zero, interval

# The paper's Table 3: worst-case relative best-response gain over 10 seeds at the end of training.
PAPER_EPSILON_BOUND = {"consumer": 0.03, "firm": 0.10, "government": 0.01}

# The training gain is read over the first and last W episodes of a stage: a tenth of it, at least one
# episode and at most TRAINING_WINDOW_CAP, so short smoke stages and long ones both give a stable mean.
TRAINING_WINDOW_MIN = 1
TRAINING_WINDOW_CAP = 50
TRAINING_WINDOW_FRACTION = 0.1


def training_window(episodes: int) -> int:
    return max(TRAINING_WINDOW_MIN, min(TRAINING_WINDOW_CAP, int(TRAINING_WINDOW_FRACTION * episodes)))


def training_gain(results: Results, economy: str, seed: int, branch: str, group: str) -> dict:
    """Reward gained by `group` over main training: late in the final stage minus early in its first stage."""
    plan = results.plan
    stages = results.stages
    first = next((s for s in stages if group in s.train), None)
    if first is None or (group == "government" and fixed_rate(plan, branch) is not None):
        return {"gain": float("nan"), "start": float("nan"), "end": float("nan"), "first_stage": None}
    last = stages[-1]
    key = f"reward/{group}"
    begin = results.metrics(economy, seed, branch, first.name)[key]
    final = results.metrics(economy, seed, branch, last.name)[key]
    w_begin, w_end = training_window(first.episodes), training_window(last.episodes)
    start, end = float(np.nanmean(begin[:w_begin])), float(np.nanmean(final[-w_end:]))
    return {"gain": end - start, "start": start, "end": end, "first_stage": first.name,
            "final_stage": last.name, "window_start": w_begin, "window_end": w_end}


def epsilon_entry(results: Results, economy: str, seed: int, branch: str, group: str) -> dict:
    br = results.best_responses[economy, seed, branch, group]
    trained = training_gain(results, economy, seed, branch, group)
    absolute = float(br["gain"]["mean"])
    gain = trained["gain"]
    relative = absolute / gain if finite(gain) and gain > 0 else float("nan")
    # Where the best-response rule also evaluated the type's untrained network under its own
    # evaluation conditions, the gain over that reference gives a second relative measure.
    untrained = br.get("training_gain_vs_untrained")
    untrained_gain = float(untrained["mean"]) if untrained else float("nan")
    return {
        "relative": relative,
        "absolute": absolute,
        "ci95": [float(br["gain"]["ci95"][0]), float(br["gain"]["ci95"][1])],
        "relative_vs_untrained": absolute / untrained_gain if finite(untrained_gain) and untrained_gain > 0
        else float("nan"),
        "gain_vs_untrained": untrained_gain,
        "before": interval(br["before"]),
        "after": interval(br["after"]),
        "training_gain": gain,
        "training_start": trained["start"],
        "training_end": trained["end"],
        "training_first_stage": trained["first_stage"],
        "training_window": [trained.get("window_start"), trained.get("window_end")],
        "br_episodes": int(br["episodes"]),
        "br_curve_start": float(br["curve_start"]),
        "br_curve_end": float(br["curve_end"]),
        "br_curve_end_change": float(br["curve_end_change"]),
        "br_window": int(br["window"]),
    }


def epsilon_over_seeds(per_seed: list[dict]) -> dict:
    """The paper's Table 3 reports the worst case over seeds; the mean is kept beside it."""
    relatives = [e["relative"] for e in per_seed if finite(e["relative"])]
    untrained = [e["relative_vs_untrained"] for e in per_seed if finite(e["relative_vs_untrained"])]
    gains = across_seeds([{"mean": e["absolute"], "ci95": e["ci95"]} for e in per_seed])
    return {
        "relative": max(relatives) if relatives else float("nan"),
        "relative_mean": float(np.mean(relatives)) if relatives else float("nan"),
        "relative_by_seed": [e["relative"] for e in per_seed],
        "relative_vs_untrained": max(untrained) if untrained else float("nan"),
        "gain_vs_untrained": float(np.mean([e["gain_vs_untrained"] for e in per_seed])),
        "absolute": gains["mean"],
        "ci95": gains["ci95"],
        "training_gain": float(np.mean([e["training_gain"] for e in per_seed])),
        "br_curve_end_change": float(np.mean([e["br_curve_end_change"] for e in per_seed])),
        "seeds": len(per_seed),
    }


def against_paper(entry: dict, group: str) -> dict:
    """Whether the gap is below the paper's bound for the type, and whether the gain is distinguishable from 0."""
    below = entry["relative"] < PAPER_EPSILON_BOUND[group] if finite(entry["relative"]) else None
    return {**entry, "below_paper_bound": below, "gain_ci_includes_zero": includes_zero(entry["ci95"])}


def epsilon_by_branch(results: Results, economy: str, seed: int | None) -> dict[str, Any]:
    """Branch -> type -> gap, for one seed or over every seed (seed None)."""
    plan = results.plan
    seeds = plan.seeds if seed is None else [seed]
    epsilon: dict[str, Any] = {}
    for branch in plan.best_response_branches:
        per_type = {}
        for group in plan.best_response_types:
            entries = [epsilon_entry(results, economy, s, branch, group) for s in seeds]
            per_type[group] = against_paper(entries[0] if seed is not None else epsilon_over_seeds(entries), group)
        epsilon[branch] = per_type
    return epsilon
