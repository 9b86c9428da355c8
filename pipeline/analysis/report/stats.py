"""Intervals, ratios and correlations the report's tables are made of, and the JSON form of its numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Student t quantiles t(0.975, dof) for dof 1..30; the normal quantile beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def clean(value: Any) -> Any:
    """JSON has no NaN: undefined numbers become null."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def interval(stat: dict) -> dict:
    """{mean, ci95: [lo, hi]} (and n when known) from an evaluation or best-response entry."""
    out = {"mean": float(stat["mean"]), "ci95": [float(stat["ci95"][0]), float(stat["ci95"][1])]}
    if "n" in stat:
        out["n"] = int(stat["n"])
    return out


def across_seeds(stats: list[dict]) -> dict:
    """Combine one {mean, ci95} per seed.

    One seed: that seed's interval (over its economy-episodes). Several: the mean of the seeds'
    means with a Student-t interval from their spread, because seeds can settle in different
    equilibria and that spread, not the within-seed noise, is what a reader should see.
    """
    stats = [s for s in stats if s is not None]
    if not stats:
        return {"mean": float("nan"), "ci95": [float("nan"), float("nan")], "seeds": 0}
    if len(stats) == 1:
        return {**interval(stats[0]), "seeds": 1}
    means = np.array([s["mean"] for s in stats], dtype=float)
    mean = float(means.mean())
    dof = len(means) - 1
    t = _T975[dof - 1] if dof <= len(_T975) else 1.959964
    half = t * float(means.std(ddof=1)) / math.sqrt(len(means))
    return {"mean": mean, "ci95": [mean - half, mean + half], "seeds": len(means)}


def ratio(numerator: float, denominator: float) -> float:
    """A ratio of welfares reads as 'better' above 1 only for a positive denominator; else undefined."""
    return numerator / denominator if finite(denominator) and denominator > 0 else float("nan")


def overlap(a: dict, b: dict) -> bool | None:
    lo_a, hi_a = a["ci95"]
    lo_b, hi_b = b["ci95"]
    if not all(finite(x) for x in (lo_a, hi_a, lo_b, hi_b)):
        return None
    return bool(lo_a <= hi_b and lo_b <= hi_a)


def includes_zero(ci95: list[float]) -> bool | None:
    """Whether an interval admits no effect at all (None when either end is undefined)."""
    lo, hi = ci95
    return None if not (finite(lo) and finite(hi)) else lo <= 0 <= hi


def correlation(x: np.ndarray, y: np.ndarray) -> dict:
    """Pearson r with a Fisher-z 95% interval, r², the least-squares slope and n."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    out = {"r": float("nan"), "r2": float("nan"), "ci95": [float("nan"), float("nan")], "slope": float("nan"), "n": n}
    if n < 3 or x.std() == 0 or y.std() == 0:
        return out
    r = float(np.corrcoef(x, y)[0, 1])
    out.update(r=r, r2=r * r, slope=float(np.polyfit(x, y, 1)[0]))
    if n > 3 and abs(r) < 1:
        z, half = math.atanh(r), 1.959964 / math.sqrt(n - 3)
        out["ci95"] = [math.tanh(z - half), math.tanh(z + half)]
    return out
