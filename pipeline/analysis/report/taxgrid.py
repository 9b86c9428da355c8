"""Every fixed tax of an economy as one table over (income, corporate) rates, with the seeds that collapsed."""

from __future__ import annotations

from .results import Results, fixed_rates
from .welfare import best_point

GRID_OUTCOMES = ("welfare_total", "welfare_consumer_only")


def tax_grid_table(results: Results, economy: str, outs: dict[str, dict]) -> dict:
    """One row per fixed-tax point (sorted by income, then corporate rate) and the best point per welfare.

    A seed that collapsed there (the branch stopped training early, its firms producing next to nothing)
    still counts with the welfare its evaluation measured: the collapse is the outcome of that tax.
    """
    branches = sorted(results.fixed_branches(economy), key=lambda b: fixed_rates(results.plan, b))
    equal = set(results.equal_rate_branches(economy))
    seeds = results.seeds(economy)
    points = []
    for branch in branches:
        income, corporate = fixed_rates(results.plan, branch)
        points.append({
            "branch": branch,
            "income": income,
            "corporate": corporate,
            "equal_rate_list": branch in equal,
            **{name: outs[branch][name]["over_seeds"] for name in GRID_OUTCOMES if name in outs[branch]},
            "collapsed_seeds": sum(results.collapsed(economy, seed, branch) for seed in seeds),
            "seeds": len(seeds),
        })
    return {
        "income_rates": sorted({p["income"] for p in points}),
        "corporate_rates": sorted({p["corporate"] for p in points}),
        "points": points,
        "best": {name: best_point(outs, results.fixed_branches(economy), name) for name in GRID_OUTCOMES},
    }
