"""Seeds as the unit: per-seed intervals, Student-t intervals over seeds, paired comparisons, JSON-safe numbers.

One trained policy evaluated on many economy-episodes gives an interval of evaluation noise: it says how
well that policy's mean is known, not how another seed's training would have come out. Training is
what a reader wants to generalize over, so every headline here is over seeds: the mean of the per-seed
means with a Student-t interval from their spread. Two policies trained from the same seed share their
prefix stages and random streams, so they are compared seed by seed (paired), and a verdict is stated
only when the interval of the mean difference excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...learning.metrics import t975

NORMAL975 = 1.959963985  # the normal 97.5% quantile, for Fisher-z intervals of correlations
HIGHER, LOWER, INDISTINGUISHABLE = "higher", "lower", "indistinguishable"
ONE_SEED = "one seed: no over-seed statement"
UNDEFINED = "undefined (a value is missing)"

NAN = float("nan")


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


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
    """{mean, ci95: [lo, hi], n} of one seed, from an evaluation or best-response entry (n when known)."""
    out = {"mean": float(stat["mean"]), "ci95": [float(stat["ci95"][0]), float(stat["ci95"][1])]}
    if "n" in stat:
        out["n"] = int(stat["n"])
    return out


def over_seeds(means: list[float]) -> dict:
    """{mean, ci95, sd, seeds} of per-seed values: a Student-t interval with seeds - 1 degrees of freedom.

    Undefined values (a seed whose quantity does not exist) are left out and `seeds` counts the rest; with
    fewer than two seeds the interval and the spread are undefined, because one seed says nothing about
    another.
    """
    values = np.array([m for m in means if finite(m)], dtype=float)
    n = int(values.size)
    if n == 0:
        return {"mean": NAN, "ci95": [NAN, NAN], "sd": NAN, "seeds": 0}
    mean = float(values.mean())
    if n == 1:
        return {"mean": mean, "ci95": [NAN, NAN], "sd": NAN, "seeds": 1}
    sd = float(values.std(ddof=1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "ci95": [mean - half, mean + half], "sd": sd, "seeds": n}


def seeded(per_seed: Mapping[int, dict | None]) -> dict:
    """A quantity's per-seed intervals (evaluation noise, secondary) and its over-seed statistics (headline)."""
    kept = {str(seed): interval(stat) for seed, stat in per_seed.items() if stat is not None}
    return {"per_seed": kept, "over_seeds": over_seeds([s["mean"] for s in kept.values()])}


def ratio(numerator: float, denominator: float) -> float:
    """A ratio of welfares reads as 'better' above 1 only for a positive denominator; else undefined."""
    return numerator / denominator if finite(numerator) and finite(denominator) and denominator > 0 else NAN


def excludes_zero(ci95: list[float]) -> bool | None:
    """Whether an interval rules out no effect at all (None when either end is undefined)."""
    lo, hi = ci95
    if not (finite(lo) and finite(hi)):
        return None
    return lo > 0 or hi < 0


def verdict(difference: dict) -> str:
    """"higher"/"lower" only when the over-seed interval of the mean difference excludes 0."""
    if difference["seeds"] < 2:
        return ONE_SEED if difference["seeds"] == 1 else UNDEFINED
    separated = excludes_zero(difference["ci95"])
    if separated is None:
        return UNDEFINED
    if not separated:
        return INDISTINGUISHABLE
    return HIGHER if difference["mean"] > 0 else LOWER


def paired(policy: Mapping[str, float], baseline: Mapping[str, float]) -> dict:
    """The policy against a baseline, seed by seed (seed -> mean of each), and over the seeds both have.

    The verdict reads as "the policy is <verdict> than the baseline".
    """
    seeds = [s for s in policy if s in baseline and finite(policy[s]) and finite(baseline[s])]
    rows = {s: {"policy": policy[s], "baseline": baseline[s], "difference": policy[s] - baseline[s],
                "ratio": ratio(policy[s], baseline[s])} for s in seeds}
    difference = over_seeds([r["difference"] for r in rows.values()])
    mean_policy = float(np.mean([r["policy"] for r in rows.values()])) if rows else NAN
    mean_baseline = float(np.mean([r["baseline"] for r in rows.values()])) if rows else NAN
    return {
        "per_seed": rows,
        "difference": difference,
        "ratio_of_means": ratio(mean_policy, mean_baseline),
        "verdict": verdict(difference),
    }


def seed_means(stat: dict) -> dict[str, float]:
    """seed -> mean of a `seeded` quantity, the input of `paired`."""
    return {seed: s["mean"] for seed, s in stat["per_seed"].items()}


def correlation(x: np.ndarray, y: np.ndarray) -> dict:
    """Pearson r with a Fisher-z 95% interval, r², the least-squares slope and n."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    out = {"r": NAN, "r2": NAN, "ci95": [NAN, NAN], "slope": NAN, "n": n}
    if n < 3 or x.std() == 0 or y.std() == 0:
        return out
    r = float(np.corrcoef(x, y)[0, 1])
    out.update(r=r, r2=r * r, slope=float(np.polyfit(x, y, 1)[0]))
    if n > 3 and abs(r) < 1:
        z, half = math.atanh(r), NORMAL975 / math.sqrt(n - 3)
        out["ci95"] = [math.tanh(z - half), math.tanh(z + half)]
    return out
