"""The paper's checks of economic sense (Figs. 5 and 7), computed on this run's data."""

from __future__ import annotations

from typing import Any

import numpy as np

from .firms import pooled_firm_samples
from .results import Results, fixed_rates
from .stats import correlation

# The paper's relations of Fig. 7 are across converged runs; a run (seed, branch) whose firms produce less
# than this many units per firm and step has no market to read a price or a wage relation from.
LIVE_RUN_PRODUCTION = 1.0

# The paper's reading of Fig. 7 (sign and r² across converged runs) and of Fig. 5 (direction with the rate).
PAPER_RELATIONS = {"price_vs_consumption": {"sign": "negative", "r2": 0.73},
                   "wage_vs_hours": {"sign": "positive", "r2": 0.19}}
PAPER_TREND = {"consumer_reward": "rises", "firm_reward": "falls"}
TREND_OUTCOMES = ("consumer_reward", "firm_reward", "welfare_total")


def across_runs(results: Results, economy: str) -> dict:
    """The paper's Fig. 7 relations with one point per producing run (every evaluated seed and branch)."""
    points = []
    for seed in results.seeds(economy):
        for branch in results.plan.evaluated_branches(economy):
            m = results.evaluations[economy, seed, branch]["metrics"]
            if m["economy/production"]["mean"] < LIVE_RUN_PRODUCTION:
                continue
            points.append({"seed": seed, "branch": branch,
                           **{k: m[f"economy/{k}"]["mean"] for k in ("price", "consumption", "wage", "hours")}})
    column = {k: np.array([p[k] for p in points], dtype=float) for k in ("price", "consumption", "wage", "hours")}
    return {
        "min_production": LIVE_RUN_PRODUCTION,
        "runs": points,
        "price_vs_consumption": correlation(column["price"], column["consumption"]),
        "wage_vs_hours": correlation(column["wage"], column["hours"]),
    }


def fixed_tax_trend(results: Results, outs: dict[str, dict], economy: str) -> dict:
    """Rewards and welfare over seeds against the equal fixed rate: slope and whether they move one way
    (paper, Fig. 5)."""
    by_rate = {fixed_rates(results.plan, b)[0]: b for b in results.equal_rate_branches(economy)}
    rates = sorted(by_rate)
    trend: dict[str, Any] = {"rates": rates, "paper": dict(PAPER_TREND)}
    for name in TREND_OUTCOMES if rates else ():
        values = [outs[by_rate[r]][name]["over_seeds"] for r in rates]
        means = np.array([v["mean"] for v in values])
        steps = np.sign(np.diff(means))
        trend[name] = {
            "values": values,
            "slope_per_unit_rate": float(np.polyfit(rates, means, 1)[0]) if len(rates) > 1 else float("nan"),
            "monotonic": ("rising" if (steps > 0).all() else "falling" if (steps < 0).all() else "not monotonic")
            if len(rates) > 1 else "n/a",
        }
    return trend


def plausibility(results: Results, outs: dict[str, dict], economy: str) -> dict:
    """Price against consumption and wage against hours across firms, the fixed-tax trend, and across runs."""
    samples = pooled_firm_samples(results, economy, "learned")
    return {
        "price_vs_consumption": {**correlation(samples["price"], samples["consumption"]),
                                 "paper": dict(PAPER_RELATIONS["price_vs_consumption"])},
        "wage_vs_hours": {**correlation(samples["wage"], samples["hours"]),
                          "paper": dict(PAPER_RELATIONS["wage_vs_hours"])},
        "fixed_tax_trend": fixed_tax_trend(results, outs, economy),
        "across_runs": across_runs(results, economy),
    }
