"""`python -m pipeline.analysis.report`: the paper's tables and figures for one workflow profile.

    python -m pipeline.analysis.report --root results/<profile> --workflow-config results/<profile>/workflow.yaml

Reads what the workflow's rules wrote (per-stage metrics logs, evaluations, best responses,
benchmark records) and writes `summary.json` for machines, `summary.md` for people and the
figures under `figures/`. Every number in the summary is computed from those files; where the
data cannot support a statement (one seed, overlapping intervals, a training gain of zero) the
summary says so instead of concluding anything. With tracking enabled, each pipeline's parent
MLflow run receives the headline numbers and the report files.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from envs.rbc.config import ConfigError

from ..config import GROUPS, ExperimentConfig
from ..learning.metrics import mean_ci95
from ..orchestration.plan import ABLATION, PREFIX, WorkflowPlan

FIGURES = ("training_curves", "best_response", "welfare_vs_tax", "rollout_firms", "rollout_consumers")

# Outcome name -> evaluation metric. Rewards are per-agent episode returns; the economy's
# quantities are per agent and step (hours and consumption per consumer, production, sales and
# exports per firm), prices and wages per firm and step, tax rates per step.
OUTCOMES = {
    "welfare_total": "welfare/total",
    "welfare_consumer_only": "welfare/consumer_only",
    "consumer_reward": "reward/consumer",
    "firm_reward": "reward/firm",
    "government_reward": "reward/government",
    "income_tax_rate": "economy/income_tax_rate",
    "corporate_tax_rate": "economy/corporate_tax_rate",
    "price": "economy/price",
    "wage": "economy/wage",
    "hours": "economy/hours",
    "employed_share": "economy/employed_share",
    "consumption": "economy/consumption",
    "production": "economy/production",
    "sales": "economy/sales",
    "exports": "economy/exports",
    "domestic_share": "economy/domestic_share",
}
FIRM_COLUMNS = ("price", "wage", "hours", "workers", "production", "sales", "exports", "profit", "reward")

# A firm with fewer workers than this per step, on average over its evaluated episodes (one worker in ten
# steps), counts as employing nobody in the report's per-seed check of "every firm employs someone".
IDLE_FIRM_WORKERS = 0.1

# A firm whose employer probability moves by less than this between the lowest and the highest wage of
# the grid is one whose wage the consumers ignore (a firm that reads as a firm moves it by 0.5 or more).
IGNORED_WAGE_RESPONSE = 0.05

# The paper's relations of Fig. 7 are across converged runs; a run (seed, branch) whose firms produce less
# than this many units per firm and step has no market to read a price or a wage relation from.
LIVE_RUN_PRODUCTION = 1.0

# The paper's Table 3: worst-case relative best-response gain over 10 seeds at the end of training.
PAPER_EPSILON_BOUND = {"consumer": 0.03, "firm": 0.10, "government": 0.01}

# The fixed rates the paper compares its learned taxes with (tau = sigma = X; spec sections 9.1 and 13). A
# profile may add others (a zero tax); the comparison with the paper's own list is reported beside the
# comparison with every fixed rate, so the paper's claim and the stricter one can both be read.
PAPER_FIXED_RATES = (0.2, 0.4, 0.6, 0.8)

# The paper's welfare and reward figures are means per step (the reference code logs rewards averaged over
# steps, economies and agents); the report gives its per-episode sums in that unit too, beside these.
PAPER_PER_STEP = {"welfare_rl": "3000-4000", "welfare_best_fixed": "3160", "firm_reward": "about 115k-150k"}

# Student t quantiles t(0.975, dof) for dof 1..30; the normal quantile beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)

TRAINING_WINDOW_CAP = 50
TRAINING_WINDOW_FRACTION = 0.1


# ---------------------------------------------------------------------------------------- helpers
def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _clean(value: Any) -> Any:
    """JSON has no NaN: undefined numbers become null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
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
    return numerator / denominator if _finite(denominator) and denominator > 0 else float("nan")


def overlap(a: dict, b: dict) -> bool | None:
    lo_a, hi_a = a["ci95"]
    lo_b, hi_b = b["ci95"]
    if not all(_finite(x) for x in (lo_a, hi_a, lo_b, hi_b)):
        return None
    return bool(lo_a <= hi_b and lo_b <= hi_a)


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


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """A per-episode metrics CSV as columns (missing cells are NaN)."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, [])
    for row in rows:
        for key in columns:
            value = row.get(key)
            columns[key].append(float(value) if value not in (None, "") else float("nan"))
    return {k: np.asarray(v, dtype=float) for k, v in columns.items()}


def training_window(episodes: int) -> int:
    return max(1, min(TRAINING_WINDOW_CAP, int(TRAINING_WINDOW_FRACTION * episodes)))


def fixed_rate(plan: WorkflowPlan, branch: str) -> float | None:
    return plan.branches[branch].fixed_tax if branch in plan.branches else None


def _num(x: Any) -> str:
    if x is None or not _finite(x):
        return "n/a"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a == 0:
        return "0"
    return f"{x:.3g}"


def _ci(stat: dict | None) -> str:
    if not stat:
        return "n/a"
    lo, hi = stat["ci95"]
    return f"[{_num(lo)}, {_num(hi)}]"


def _pct(x: Any) -> str:
    return "n/a" if x is None or not _finite(x) else f"{100 * x:.2f}%"


def _ratio_text(x: Any) -> str:
    return _num(x) if _finite(x) else "undefined (the reference welfare is not positive)"


def _yes_no(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


# ---------------------------------------------------------------------------------------- loading
class Results:
    """Everything the rules wrote for one profile, addressed by economy, seed and branch."""

    def __init__(self, root: Path, plan: WorkflowPlan):
        self.root = root
        self.plan = plan
        self.evaluations: dict[tuple[str, int, str], dict] = {}
        self.best_responses: dict[tuple[str, int, str, str], dict] = {}
        self.curves: dict[tuple[str, int, str, str], dict[str, np.ndarray]] = {}
        self._metrics: dict[Path, dict[str, np.ndarray]] = {}
        first = next(iter(plan.economies)), plan.seeds[0]
        # Stage lengths and who trains when are the same for every economy and seed of a profile.
        curriculum = ExperimentConfig.from_dict(plan.experiment_dict(*first, "train")).curriculum
        self.stages = curriculum.stages
        self.stage_bounds = {**curriculum.stage_bounds(), ABLATION: (0, curriculum.total_episodes)}
        self.evaluation = ExperimentConfig.from_dict(plan.experiment_dict(*first, "evaluate")).evaluation
        self.best_response = ExperimentConfig.from_dict(plan.experiment_dict(*first, "best_response")).best_response
        self.episode_length = ExperimentConfig.from_dict(plan.experiment_dict(*first, "train")).economy.episode_length
        for economy in plan.economies:
            for seed in plan.seeds:
                for branch in plan.evaluated_branches():
                    path = self.pipe(economy, seed) / branch / "evaluation.json"
                    self.evaluations[economy, seed, branch] = json.loads(path.read_text())
                for branch in plan.best_response_branches:
                    for group in plan.best_response_types:
                        base = self.pipe(economy, seed) / branch / "best_response" / group / plan.best_response_learners[0]
                        self.best_responses[economy, seed, branch, group] = json.loads(
                            (base / "best_response.json").read_text()
                        )
                        self.curves[economy, seed, branch, group] = read_metrics(base / "curve.csv")

    def pipe(self, economy: str, seed: int) -> Path:
        return self.root / economy / f"seed{seed}"

    def metrics(self, economy: str, seed: int, branch: str, stage: str) -> dict[str, np.ndarray]:
        owner = PREFIX if stage in self.plan.prefix_stages else branch
        if branch == ABLATION:
            owner, stage = ABLATION, ABLATION
        path = self.pipe(economy, seed) / owner / f"{stage}.metrics.csv"
        if path not in self._metrics:
            rows = read_metrics(path)
            first, last = self.stage_bounds[stage]
            episodes = rows.get("episode", np.array([]))
            if not np.array_equal(episodes, np.arange(first, last)):
                found = f"{int(episodes[0])}-{int(episodes[-1])} ({episodes.size} rows)" if episodes.size else "none"
                raise ValueError(f"{path}: episodes {found}, expected {first}-{last - 1}: the stage's metrics are "
                                 "incomplete; delete its checkpoint and metrics and rerun the workflow")
            self._metrics[path] = rows
        return self._metrics[path]

    def training_log(self, economy: str, seed: int, branch: str) -> dict[str, np.ndarray]:
        """A branch's whole training history: the shared prefix stages, then its own."""
        stages = [ABLATION] if branch == ABLATION else self.plan.stages
        parts = [self.metrics(economy, seed, branch, stage) for stage in stages]
        keys = [k for k in parts[0] if all(k in p for p in parts)]
        return {k: np.concatenate([p[k] for p in parts]) for k in keys}


# ---------------------------------------------------------------------------------------- analysis
def welfare_table(results: Results, economy: str, seed: int | None, metric: str, policy_branch: str) -> dict:
    """The policy branch and every fixed tax on one welfare measure, with the best fixed tax."""
    plan = results.plan
    seeds = plan.seeds if seed is None else [seed]

    def stat(branch: str) -> dict:
        return across_seeds([results.evaluations[economy, s, branch]["metrics"][metric] for s in seeds])

    table: dict[str, Any] = {policy_branch: stat(policy_branch), "fixed_tax": {}}
    for branch in plan.branches:
        rate = fixed_rate(plan, branch)
        if rate is not None:
            table["fixed_tax"][f"{rate:g}"] = stat(branch)
    if table["fixed_tax"]:
        best_rate = max(table["fixed_tax"], key=lambda r: table["fixed_tax"][r]["mean"])
        best = table["fixed_tax"][best_rate]
        learned = table[policy_branch]
        table["best_fixed"] = {"rate": float(best_rate), **best}
        table["ratio_to_best_fixed"] = ratio(learned["mean"], best["mean"])
        table["difference_to_best_fixed"] = learned["mean"] - best["mean"]
        table["ci_overlap_with_best_fixed"] = overlap(learned, best)
        paper_rates = [r for r in table["fixed_tax"] if float(r) in PAPER_FIXED_RATES]
        if paper_rates:
            best_rate = max(paper_rates, key=lambda r: table["fixed_tax"][r]["mean"])
            best = table["fixed_tax"][best_rate]
            table["best_paper_rate"] = {"rate": float(best_rate), **best}
            table["ratio_to_best_paper_rate"] = ratio(learned["mean"], best["mean"])
            table["ci_overlap_with_best_paper_rate"] = overlap(learned, best)
    return table


def outcomes(results: Results, economy: str, seed: int | None, branch: str) -> dict:
    seeds = results.plan.seeds if seed is None else [seed]
    return {
        name: across_seeds([results.evaluations[economy, s, branch]["metrics"].get(key) for s in seeds])
        for name, key in OUTCOMES.items()
        if key in results.evaluations[economy, seeds[0], branch]["metrics"]
    }


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
    relative = absolute / gain if _finite(gain) and gain > 0 else float("nan")
    # Where the best-response rule also evaluated the type's untrained network under its own
    # evaluation conditions, the gain over that reference gives a second relative measure.
    untrained = br.get("training_gain_vs_untrained")
    untrained_gain = float(untrained["mean"]) if untrained else float("nan")
    return {
        "relative": relative,
        "absolute": absolute,
        "ci95": [float(br["gain"]["ci95"][0]), float(br["gain"]["ci95"][1])],
        "relative_vs_untrained": absolute / untrained_gain if _finite(untrained_gain) and untrained_gain > 0
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
    relatives = [e["relative"] for e in per_seed if _finite(e["relative"])]
    untrained = [e["relative_vs_untrained"] for e in per_seed if _finite(e["relative_vs_untrained"])]
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


def pooled_firm_samples(results: Results, economy: str, branch: str,
                        seeds: list[int] | None = None) -> dict[str, np.ndarray]:
    """(economy-episodes of the given seeds, default every seed, firms) arrays of per-firm episode means."""
    fields: dict[str, list[np.ndarray]] = {}
    for seed in results.plan.seeds if seeds is None else seeds:
        for key, rows in results.evaluations[economy, seed, branch]["firm_samples"].items():
            fields.setdefault(key, []).append(np.asarray(rows, dtype=float))
    return {k: np.concatenate(v) for k, v in fields.items()}


def per_firm(results: Results, economy: str, branch: str, seeds: list[int] | None = None) -> dict:
    samples = pooled_firm_samples(results, economy, branch, seeds)
    n_firms = next(iter(samples.values())).shape[1]
    table = {key: [mean_ci95(samples[key][:, i].tolist()) for i in range(n_firms)]
             for key in FIRM_COLUMNS if key in samples}
    sales, exports = samples.get("sales"), samples.get("exports")
    if sales is not None and exports is not None:
        total = sales.sum(0) + exports.sum(0)
        table["domestic_share"] = [float(sales[:, i].sum() / total[i]) if total[i] > 0 else float("nan")
                                   for i in range(n_firms)]
    return table


def across_runs(results: Results, economy: str) -> dict:
    """The paper's Fig. 7 relations with one point per producing run (every evaluated seed and branch)."""
    plan = results.plan
    points = []
    for seed in plan.seeds:
        for branch in plan.evaluated_branches():
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


def ignored_firms(response: dict | None) -> list[int] | None:
    """Firms whose posted wage does not move the consumers' employer choice (None without a probe)."""
    if not response:
        return None
    return [i for i, row in enumerate(response["employer_probability"])
            if abs(row[-1] - row[0]) < IGNORED_WAGE_RESPONSE]


def plausibility(results: Results, economy: str) -> dict:
    """The paper's checks of economic sense, computed on this run's data."""
    plan = results.plan
    samples = pooled_firm_samples(results, economy, "learned")
    out: dict[str, Any] = {
        "price_vs_consumption": {**correlation(samples["price"], samples["consumption"]),
                                 "paper": {"sign": "negative", "r2": 0.73}},
        "wage_vs_hours": {**correlation(samples["wage"], samples["hours"]),
                          "paper": {"sign": "positive", "r2": 0.19}},
    }
    rates = sorted(fixed_rate(plan, b) for b in plan.branches if fixed_rate(plan, b) is not None)
    trend: dict[str, Any] = {"rates": rates, "paper": {"consumer_reward": "rises", "firm_reward": "falls"}}
    if rates:
        by_rate = {fixed_rate(plan, b): b for b in plan.branches if fixed_rate(plan, b) is not None}
        for name, metric in (("consumer_reward", "reward/consumer"), ("firm_reward", "reward/firm"),
                             ("welfare_total", "welfare/total")):
            values = [across_seeds([results.evaluations[economy, s, by_rate[r]]["metrics"][metric]
                                    for s in plan.seeds]) for r in rates]
            means = np.array([v["mean"] for v in values])
            steps = np.sign(np.diff(means))
            trend[name] = {
                "values": values,
                "slope_per_unit_rate": float(np.polyfit(rates, means, 1)[0]) if len(rates) > 1 else float("nan"),
                "monotonic": ("rising" if (steps > 0).all() else "falling" if (steps < 0).all() else "not monotonic")
                if len(rates) > 1 else "n/a",
            }
    out["fixed_tax_trend"] = trend
    out["across_runs"] = across_runs(results, economy)
    return out


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
    summary: dict[str, Any] = {
        "welfare": welfare_table(results, economy, seed, "welfare/total", "learned"),
        "outcomes": {branch: outcomes(results, economy, seed, branch) for branch in plan.evaluated_branches()},
    }
    if "consumer_welfare" in plan.branches:
        summary["welfare_consumer_only"] = welfare_table(
            results, economy, seed, "welfare/consumer_only", "consumer_welfare"
        )
        summary["welfare_consumer_only"]["learned"] = across_seeds(
            [results.evaluations[economy, s, "learned"]["metrics"]["welfare/consumer_only"]
             for s in (plan.seeds if seed is None else [seed])]
        )
    seeds = plan.seeds if seed is None else [seed]
    epsilon: dict[str, Any] = {}
    for branch in plan.best_response_branches:
        per_type = {}
        for group in plan.best_response_types:
            entries = [epsilon_entry(results, economy, s, branch, group) for s in seeds]
            per_type[group] = entries[0] if seed is not None else epsilon_over_seeds(entries)
        epsilon[branch] = per_type
    summary["epsilon_by_branch"] = epsilon
    summary["epsilon"] = epsilon.get("learned", next(iter(epsilon.values()), {}))
    if plan.ablation:
        cur, abl = summary["outcomes"]["learned"], summary["outcomes"][ABLATION]
        summary["ablation"] = {
            "curriculum": cur,
            "nocurriculum": abl,
            "welfare_ratio": ratio(abl["welfare_total"]["mean"], cur["welfare_total"]["mean"]),
            "welfare_difference": abl["welfare_total"]["mean"] - cur["welfare_total"]["mean"],
            "welfare_ci_overlap": overlap(cur["welfare_total"], abl["welfare_total"]),
        }
    return summary


def build_summary(results: Results, logs: Path) -> dict:
    plan = results.plan
    economies: dict[str, Any] = {}
    for economy in plan.economies:
        # "Every firm employs someone" is a property of one converged economy, so it is judged per seed:
        # pooling would let one seed's live firm hide another seed's dead one.
        firms_by_seed = {str(seed): per_firm(results, economy, "learned", [seed]) for seed in plan.seeds}
        economies[economy] = {
            "seeds": {str(seed): pipeline_summary(results, economy, seed) for seed in plan.seeds},
            "over_seeds": pipeline_summary(results, economy, None),
            "per_firm": per_firm(results, economy, "learned"),
            "per_firm_by_seed": firms_by_seed,
            "idle_firms_by_seed": {seed: idle_firms(table) for seed, table in firms_by_seed.items()},
            "consumer_response_by_seed": {
                str(seed): results.evaluations[economy, seed, "learned"].get("consumer_response")
                for seed in plan.seeds},
            "plausibility": plausibility(results, economy),
        }
    primary = "open" if "open" in plan.economies else next(iter(plan.economies))
    head = economies[primary]["over_seeds"]
    first_stage_of = {g: next((s.name for s in results.stages if g in s.train), None) for g in GROUPS}
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
        "definitions": {
            "welfare": "total = sum of consumer episode utilities + firm_welfare_weight x sum of firm episode profits;"
                       " consumer_only = sum of consumer episode utilities; one sample per economy-episode",
            "ci95": "normal-approximation 95% interval of the mean over economy-episodes (one seed); over several "
                    "seeds, mean of the seed means with a Student-t interval from their spread",
            "epsilon.absolute": "best-response gain: type's mean reward after minus before the best response "
                                "(evaluation rollouts), interval from both evaluations' intervals",
            "epsilon.relative": "absolute / training gain; training gain = mean reward over the last W episodes "
                                "of the final stage minus mean reward over the first W episodes of the first "
                                f"stage in which the type trained ({first_stage_of}); W = "
                                f"{TRAINING_WINDOW_FRACTION:g} x the stage's episodes, at least 1, at most "
                                f"{TRAINING_WINDOW_CAP}; undefined (null) when the training gain is not positive;"
                                " over seeds: the worst (largest) seed, as the paper's Table 3",
            "epsilon.relative_vs_untrained": "absolute / (type's reward with its trained network minus with a "
                                             "freshly initialized one), both measured by the best-response rule "
                                             "under its evaluation conditions (full disutility, no masks)",
            "wall_time_s.dag": "latest job end minus earliest job start over the benchmarked jobs (training, "
                               "evaluation, best response); jobs_sum adds their wall times",
        },
    }


# ---------------------------------------------------------------------------------------- markdown
def _stat_cells(stat: dict | None) -> str:
    return f"{_num(stat['mean'])} | {_ci(stat)}" if stat else "n/a | n/a"


def _seed_note(plan: WorkflowPlan) -> str:
    if len(plan.seeds) == 1:
        return (f"One seed ({plan.seeds[0]}): intervals are over economy-episodes of that seed and say nothing "
                "about how much another seed would differ.")
    return (f"{len(plan.seeds)} seeds: means of the seed means; intervals are Student-t over the seeds' means.")


def _rates_text(rates) -> str:
    return "/".join(f"{100 * r:g}" for r in rates) + "%"


def _per_step_welfare_text(w: dict, episode_length: int) -> str:
    """The welfare comparison in the unit of the paper's figures, so the levels can be compared at all."""
    learned = w["learned"]["mean"] / episode_length
    text = (f"Per step (episode sums / {episode_length}, the unit of the paper's figures): learned "
            f"{_num(learned)}, best fixed {_num(w['best_fixed']['mean'] / episode_length)}")
    if "best_paper_rate" in w and w["best_paper_rate"]["rate"] != w["best_fixed"]["rate"]:
        text += f", best of the paper's rates {_num(w['best_paper_rate']['mean'] / episode_length)}"
    return (text + f". Paper (open economy, per step): RL taxes {PAPER_PER_STEP['welfare_rl']}, best fixed rate "
            f"{PAPER_PER_STEP['welfare_best_fixed']} (of {_rates_text(PAPER_FIXED_RATES)}), the best RL solution "
            "almost 15% above it.")


def _per_seed_comparison(data: dict, table: str, policy_branch: str, add) -> None:
    """One row per seed: that seed's policy against that seed's best fixed tax, on within-seed intervals.

    Over seeds the intervals are Student-t on a handful of seed means and say little; this table shows whether
    each seed on its own reaches the comparison.
    """
    add("| Seed | learned | 95% CI | best fixed | 95% CI | learned / best fixed | intervals overlap |")
    add("|---|---|---|---|---|---|---|")
    for seed, per_seed in data["seeds"].items():
        w = per_seed[table]
        if "best_fixed" not in w:
            continue
        best = w["best_fixed"]
        add(f"| {seed} | {_stat_cells(w[policy_branch])} | {_num(best['mean'])} ({best['rate']:.0%}) | {_ci(best)} | "
            f"{_ratio_text(w['ratio_to_best_fixed'])} | {_yes_no(w['ci_overlap_with_best_fixed'])} |")
    add("")


def idle_firms(per_firm_table: dict) -> list[int]:
    """Firms that employ nobody (fewer than IDLE_FIRM_WORKERS workers per step on average)."""
    return [i for i, stat in enumerate(per_firm_table.get("workers", [])) if stat["mean"] < IDLE_FIRM_WORKERS]


def _consumer_response_section(by_seed: dict, economy: str, add) -> None:
    """The probe of pipeline.analysis.probes, one table per seed: does each firm's wage and price move the consumers?"""
    if not any(by_seed.values()):
        return
    add(f"## Consumers' answer to one firm's terms: learned taxes ({economy} economy)")
    add("")
    add("The trained consumer policy asked, on the observations of one evaluation episode, what it would do if "
        "one firm alone posted each wage (probability that a consumer picks it as employer) or each price (units "
        "of its good a consumer asks for), everything else as observed. A firm whose wage moves its employer "
        f"probability by less than {IGNORED_WAGE_RESPONSE:g} is one the consumers ignore by its index: no wage it "
        "posts brings workers.")
    add("")
    for seed, response in by_seed.items():
        if not response:
            continue
        wages, prices = response["wage_grid"], response["price_grid"]
        add(f"Seed {seed}:")
        add("")
        add("| Firm | " + " | ".join(f"employer at wage {w:g}" for w in wages) +
            f" | units at price {prices[0]:g} | units at price {prices[-1]:g} |")
        add("|" + "---|" * (len(wages) + 3))
        for i, (employer, demand) in enumerate(zip(response["employer_probability"], response["demand_units"])):
            add(f"| {i} | " + " | ".join(f"{x:.3f}" for x in employer) + f" | {demand[0]:.2f} | {demand[-1]:.2f} |")
        ignored = ignored_firms(response)
        add("")
        add(f"Firms whose wage the consumers ignore: {', '.join(map(str, ignored)) if ignored else 'none'}.")
        add("")


def render_markdown(summary: dict, results: Results) -> str:
    plan, evaluation, br = results.plan, results.evaluation, results.best_response
    lines: list[str] = []
    add = lines.append
    stages = ", ".join(f"{s.name} ({s.episodes} episodes: {'+'.join(s.train)})" for s in results.stages)
    add(f"# Results: profile `{plan.profile}`")
    add("")
    add(f"Economies: {', '.join(plan.economies)}; seeds: {', '.join(map(str, plan.seeds))}. "
        f"Curriculum: {stages}; the first {len(plan.prefix_stages)} stage(s) are shared by every branch. "
        f"Evaluation: {evaluation.episodes} episodes x {evaluation.num_envs} economies per policy; "
        f"best responses: {br.episodes} episodes ({br.algorithm}), evaluated over {br.eval_episodes} episodes.")
    add("")
    add(_seed_note(plan) + " Welfare, rewards and 95% intervals as defined in `summary.json` (`definitions`).")
    add("")
    primary = summary["primary_economy"]
    for economy, data in summary["economies"].items():
        agg = data["over_seeds"]
        add(f"## Welfare: learned taxes vs fixed taxes ({economy} economy)")
        add("")
        add("| Government policy | total welfare | 95% CI |")
        add("|---|---|---|")
        add(f"| learned (RL, total welfare) | {_stat_cells(agg['welfare']['learned'])} |")
        for rate, stat in agg["welfare"]["fixed_tax"].items():
            add(f"| fixed {float(rate):.0%} | {_stat_cells(stat)} |")
        w = agg["welfare"]
        if "best_fixed" in w:
            verdict = {True: "overlap", False: "do not overlap", None: "are undefined"}[w["ci_overlap_with_best_fixed"]]
            add("")
            add(f"Best fixed tax: {w['best_fixed']['rate']:.0%} ({_num(w['best_fixed']['mean'])}). "
                f"Learned - best fixed = {_num(w['difference_to_best_fixed'])}, learned / best fixed = "
                f"{_ratio_text(w['ratio_to_best_fixed'])}; the 95% intervals {verdict}.")
            if "best_paper_rate" in w and w["best_paper_rate"]["rate"] != w["best_fixed"]["rate"]:
                paper = w["best_paper_rate"]
                add("")
                add(f"Against the paper's fixed rates only ({_rates_text(PAPER_FIXED_RATES)}): best {paper['rate']:.0%} "
                    f"({_num(paper['mean'])}), learned / best = {_ratio_text(w['ratio_to_best_paper_rate'])}; the "
                    f"95% intervals overlap: {_yes_no(w['ci_overlap_with_best_paper_rate'])}.")
            add("")
            add(_per_step_welfare_text(w, results.episode_length))
        add("")
        if len(plan.seeds) > 1:
            add("Per seed (learned taxes against that seed's best fixed tax):")
            add("")
            _per_seed_comparison(data, "welfare", "learned", add)
        if agg.get("welfare_consumer_only"):
            c = agg["welfare_consumer_only"]
            add(f"### Consumer-only welfare ({economy} economy)")
            add("")
            add("| Government policy | consumer-only welfare | 95% CI |")
            add("|---|---|---|")
            add(f"| learned (RL, consumer-only welfare) | {_stat_cells(c['consumer_welfare'])} |")
            add(f"| learned (RL, total welfare), for reference | {_stat_cells(c['learned'])} |")
            for rate, stat in c["fixed_tax"].items():
                add(f"| fixed {float(rate):.0%} | {_stat_cells(stat)} |")
            if "best_fixed" in c:
                add("")
                add(f"Best fixed tax: {c['best_fixed']['rate']:.0%}. Consumer-welfare RL - best fixed = "
                    f"{_num(c['difference_to_best_fixed'])}, ratio {_ratio_text(c['ratio_to_best_fixed'])}; "
                    f"intervals overlap: {_yes_no(c['ci_overlap_with_best_fixed'])}.")
            add("")
            if len(plan.seeds) > 1:
                add("Per seed (consumer-welfare government against that seed's best fixed tax):")
                add("")
                _per_seed_comparison(data, "welfare_consumer_only", "consumer_welfare", add)

    add("## Best-response gaps (epsilon, the paper's Table 3)")
    add("")
    add("Relative epsilon = best-response gain / the type's reward gain over main training; the training gain "
        "is the mean reward over the last W episodes of the final stage minus the mean over the first W "
        f"episodes of the first stage in which the type trained (W = {TRAINING_WINDOW_FRACTION:.0%} of the stage, "
        f"1 to {TRAINING_WINDOW_CAP}). Over several seeds the relative column is the worst seed, as in the paper. "
        "'Relative to untrained' divides the same gain by the type's reward with its trained network minus with "
        "a freshly initialized one, both evaluated by the best-response rule (full disutility, no masks). "
        "The 'BR curve end change' is the change of the best-response learning curve over its last window: far "
        "from zero means the best response had not plateaued and the gain is a lower bound.")
    add("")
    for economy, data in summary["economies"].items():
        for branch, per_type in data["over_seeds"]["epsilon_by_branch"].items():
            add(f"### {economy} economy, `{branch}` branch")
            add("")
            add("| Type | relative epsilon | paper bound | below bound | absolute gain | 95% CI | gain CI "
                "includes 0 | training gain | relative to untrained | BR curve end change |")
            add("|---|---|---|---|---|---|---|---|---|---|")
            for group, e in per_type.items():
                bound = PAPER_EPSILON_BOUND[group]
                below = None if not _finite(e["relative"]) else e["relative"] < bound
                lo, hi = e["ci95"]
                zero = None if not (_finite(lo) and _finite(hi)) else lo <= 0 <= hi
                add(f"| {group} | {_pct(e['relative'])} | < {bound:.0%} | {_yes_no(below)} | {_num(e['absolute'])} | "
                    f"{_ci(e)} | {_yes_no(zero)} | {_num(e['training_gain'])} | {_pct(e['relative_vs_untrained'])} | "
                    f"{_num(e['br_curve_end_change'])} |")
            add("")

    def outcome_table(columns: dict[str, dict], with_ci: str | None = None) -> None:
        names = [n for n in OUTCOMES if any(n in c for c in columns.values())]
        header = ["Outcome"]
        for label in columns:
            header += [label, "95% CI"] if label == with_ci else [label]
        add("| " + " | ".join(header) + " |")
        add("|" + "---|" * len(header))
        for name in names:
            cells = [name.replace("_", " ")]
            for label, col in columns.items():
                stat = col.get(name)
                cells += [_num(stat["mean"]) if stat else "n/a"] + ([_ci(stat)] if label == with_ci else [])
            add("| " + " | ".join(cells) + " |")
        add("")

    add("## Outcomes of every policy")
    add("")
    add("Per-agent episode rewards; hours and consumption (units) per consumer and step, production, sales and "
        "exports (units) per firm and step; prices, wages and tax rates averaged over the steps the agents chose.")
    add("")
    for economy, data in summary["economies"].items():
        add(f"### {economy} economy")
        add("")
        labels = {}
        for branch, stats in data["over_seeds"]["outcomes"].items():
            rate = fixed_rate(plan, branch)
            labels[f"fixed {rate:.0%}" if rate is not None else branch] = stats
        outcome_table(labels, with_ci="learned")
        learned = data["over_seeds"]["outcomes"].get("learned", {})
        if "firm_reward" in learned:
            T = results.episode_length
            add(f"Per step (the unit of the paper's figures), learned taxes: firm reward "
                f"{_num(learned['firm_reward']['mean'] / T)} per firm (paper, Fig. 4: {PAPER_PER_STEP['firm_reward']}), "
                f"consumer reward {_num(learned['consumer_reward']['mean'] / T)} per consumer.")
            add("")

    add(f"## Per firm: learned taxes ({primary} economy)")
    add("")
    add("Episode means per firm, pooled over every evaluated economy-episode" +
        (" of every seed" if len(plan.seeds) > 1 else "") + "; hours and workers are the labour each firm employs.")
    add("")
    pf = summary["economies"][primary]["per_firm"]
    cols = [c for c in FIRM_COLUMNS if c in pf] + (["domestic_share"] if "domestic_share" in pf else [])
    add("| Firm | " + " | ".join(c.replace("_", " ") for c in cols) + " |")
    add("|" + "---|" * (len(cols) + 1))
    for i in range(len(pf[cols[0]])):
        cells = [_num(pf[c][i]) if c == "domestic_share" else _num(pf[c][i]["mean"]) for c in cols]
        add(f"| {i} | " + " | ".join(cells) + " |")
    add("")
    by_seed = summary["economies"][primary]["per_firm_by_seed"]
    add(f"Workers per firm and step, and domestic share of sales, by seed (a firm with fewer than "
        f"{IDLE_FIRM_WORKERS:g} workers per step counts as employing nobody):")
    add("")
    n_firms = len(pf[cols[0]])
    add("| Seed | " + " | ".join(f"firm {i}" for i in range(n_firms)) + " | firms employing nobody |")
    add("|" + "---|" * (n_firms + 2))
    for seed, table in by_seed.items():
        idle = summary["economies"][primary]["idle_firms_by_seed"][seed]
        cells = [f"{_num(table['workers'][i]['mean'])} ({_num(table['domestic_share'][i])})"
                 if "domestic_share" in table else _num(table["workers"][i]["mean"]) for i in range(n_firms)]
        add(f"| {seed} | " + " | ".join(cells) + f" | {', '.join(map(str, idle)) if idle else 'none'} |")
    add("")
    _consumer_response_section(summary["economies"][primary]["consumer_response_by_seed"], primary, add)

    if plan.ablation:
        add("## Curriculum vs no curriculum (ablation)")
        add("")
        add(f"The `{ABLATION}` run trains every type from episode 0 with full action ranges and full labour "
            "disutility for the same total number of episodes.")
        add("")
        for economy, data in summary["economies"].items():
            abl = data["over_seeds"]["ablation"]
            add(f"### {economy} economy")
            add("")
            add("| Outcome | curriculum | 95% CI | no curriculum | 95% CI |")
            add("|---|---|---|---|---|")
            for name in OUTCOMES:
                if name in abl["curriculum"] and name in abl["nocurriculum"]:
                    add(f"| {name.replace('_', ' ')} | {_stat_cells(abl['curriculum'][name])} | "
                        f"{_stat_cells(abl['nocurriculum'][name])} |")
            add("")
            add(f"Welfare without minus with curriculum = {_num(abl['welfare_difference'])}, ratio "
                f"{_ratio_text(abl['welfare_ratio'])}; intervals overlap: {_yes_no(abl['welfare_ci_overlap'])}.")
            add("")

    if len(summary["economies"]) > 1:
        add("## Economies side by side (learned taxes)")
        add("")
        columns = {e: d["over_seeds"]["outcomes"]["learned"] for e, d in summary["economies"].items()}
        outcome_table(columns)
        gaps = ", ".join(f"{e}: {_num(d['over_seeds']['welfare'].get('difference_to_best_fixed'))}"
                         for e, d in summary["economies"].items())
        add(f"Learned minus best fixed welfare: {gaps}. Paper: in the closed economy most runs end in "
            "low-welfare, low-production equilibria.")
        add("")

    add("## Economic plausibility")
    add("")
    add("Pearson correlations across firms and evaluated economy-episodes (learned taxes), with Fisher-z 95% "
        "intervals that treat every (firm, economy-episode) point as independent, which firms of one economy are "
        "not, so the intervals are optimistic. The paper's r² are across converged runs, so the two are "
        "comparable in sign more than in size.")
    add("")
    add("| Economy | relation | r | 95% CI | r² | n | slope | paper |")
    add("|---|---|---|---|---|---|---|---|")
    for economy, data in summary["economies"].items():
        p = data["plausibility"]
        for name, label in (("price_vs_consumption", "price vs consumption (units)"),
                            ("wage_vs_hours", "wage vs hours")):
            c = p[name]
            add(f"| {economy} | {label} | {_num(c['r'])} | [{_num(c['ci95'][0])}, {_num(c['ci95'][1])}] | "
                f"{_num(c['r2'])} | {c['n']} | {_num(c['slope'])} | {c['paper']['sign']}, r² {c['paper']['r2']} |")
            runs = p.get("across_runs", {}).get(name)
            if runs is not None:
                add(f"| {economy} | {label}, across runs | {_num(runs['r'])} | [{_num(runs['ci95'][0])}, "
                    f"{_num(runs['ci95'][1])}] | {_num(runs['r2'])} | {runs['n']} | {_num(runs['slope'])} | "
                    f"{c['paper']['sign']}, r² {c['paper']['r2']} |")
    add("")
    add("'Across runs' is the paper's reading: one point per run (seed and branch, the ablation included) whose "
        f"firms produce at least {LIVE_RUN_PRODUCTION:g} unit per firm and step, at the run's mean price, "
        "consumption, wage and hours.")
    add("")
    add("Fixed-tax trend (paper, Fig. 5: consumer reward rises and firm reward falls with the rate):")
    add("")
    for economy, data in summary["economies"].items():
        trend = data["plausibility"]["fixed_tax_trend"]
        if not trend["rates"]:
            continue
        add(f"| {economy} economy | " + " | ".join(f"fixed {r:.0%}" for r in trend["rates"]) +
            " | slope per unit rate | direction |")
        add("|" + "---|" * (len(trend["rates"]) + 3))
        for name in ("consumer_reward", "firm_reward", "welfare_total"):
            t = trend[name]
            add(f"| {name.replace('_', ' ')} | " + " | ".join(_num(v["mean"]) for v in t["values"]) +
                f" | {_num(t['slope_per_unit_rate'])} | {t['monotonic']} |")
        add("")

    wt = summary["wall_time_s"]
    add("## Wall time")
    add("")
    add(f"DAG wall time {_num(wt['dag'])} s (earliest benchmarked job start to latest end, {wt['jobs']} jobs); "
        f"summed job wall time {_num(wt['jobs_sum'])} s. If parts of the DAG were rerun later, the span includes "
        "the time between the runs.")
    add("")
    add("## Figures")
    add("")
    for name, text in (
        ("training_curves", "rewards per type over the curriculum, stage boundaries marked"),
        ("best_response", "reward before and after each type's best response, and the best-response curves"),
        ("welfare_vs_tax", "welfare and rewards against the fixed tax rate, the learned policy marked"),
        ("rollout_firms", "one evaluated episode of the trained economy, per firm"),
        ("rollout_consumers", "the same episode, per consumer, and the tax rates"),
    ):
        add(f"- `figures/{name}.png`: {text}.")
    add("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- figures
def _smooth(y: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or y.size < 2:
        return y
    width = min(width, y.size)
    kernel = np.ones(width) / width
    padded = np.concatenate([np.full(width - 1, y[0]), y])
    return np.convolve(padded, kernel, mode="valid")


def _branch_style(plan: WorkflowPlan, branch: str) -> dict:
    if branch == "learned":
        return {"color": "tab:blue", "lw": 1.6, "label": "learned taxes"}
    if branch == "consumer_welfare":
        return {"color": "tab:orange", "lw": 1.2, "label": "learned, consumer welfare"}
    if branch == ABLATION:
        return {"color": "tab:red", "lw": 1.0, "ls": "--", "label": "no curriculum"}
    rate = fixed_rate(plan, branch)
    shade = 0.25 + 0.5 * (rate or 0)
    return {"color": (shade, shade, shade), "lw": 0.9, "label": f"fixed {rate:.0%}"}


def figure_training_curves(results: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    economies = list(plan.economies)
    fig, axes = plt.subplots(len(economies), 3, figsize=(15, 3.6 * len(economies)), squeeze=False)
    bounds = [(stage.name, *results.stage_bounds[stage.name]) for stage in results.stages]
    prefix_end = bounds[len(plan.prefix_stages) - 1][2]
    for row, economy in enumerate(economies):
        for branch in plan.evaluated_branches():
            logs = [results.training_log(economy, s, branch) for s in plan.seeds]
            episodes = logs[0]["episode"]
            width = max(1, episodes.size // 40)
            # Smoothed over the whole history, so a branch starts where the shared prefix ends.
            own = episodes >= prefix_end - 1 if branch != ABLATION else np.ones_like(episodes, dtype=bool)
            for col, group in enumerate(GROUPS):
                series = _smooth(np.nanmean(np.stack([log[f"reward/{group}"] for log in logs]), axis=0), width)
                axes[row, col].plot(episodes[own], series[own], **_branch_style(plan, branch))
                if branch == "learned":
                    axes[row, col].plot(episodes[~own | (episodes == prefix_end - 1)],
                                        series[~own | (episodes == prefix_end - 1)], color="k", lw=1.4,
                                        label="shared prefix")
        for col, group in enumerate(GROUPS):
            ax = axes[row, col]
            for name, lo, hi in bounds:
                ax.axvline(lo, color="k", lw=0.5, alpha=0.4)
                ax.text((lo + hi) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                        fontsize=7)
            ax.set_title(f"{economy}: {group} reward" + (" (its welfare objective)" if group == "government" else ""),
                         pad=14)
            ax.set_xlabel("episode")
        axes[row, 0].set_ylabel("per-agent episode return (smoothed)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), fontsize=8)
    seeds = f"mean of {len(plan.seeds)} seeds" if len(plan.seeds) > 1 else f"seed {plan.seeds[0]}"
    fig.suptitle(f"Training curves ({seeds}); the branches continue the shared prefix stages")
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_best_response(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    groups = plan.best_response_types
    fig, axes = plt.subplots(2, max(len(groups), 1), figsize=(5 * max(len(groups), 1), 7.5), squeeze=False)
    runs = [(e, s, b) for e in plan.economies for s in plan.seeds for b in plan.best_response_branches]
    for col, group in enumerate(groups):
        ax = axes[0, col]
        x = np.arange(len(runs))
        for offset, which, color in ((-0.2, "before", "tab:gray"), (0.2, "after", "tab:green")):
            stats = [summary["economies"][e]["seeds"][str(s)]["epsilon_by_branch"][b][group][which] for e, s, b in runs]
            means = np.array([st["mean"] for st in stats])
            err = np.array([[st["mean"] - st["ci95"][0], st["ci95"][1] - st["mean"]] for st in stats]).T
            ax.bar(x + offset, means, width=0.4, yerr=np.nan_to_num(err), capsize=3, color=color, label=which)
        ax.set_xticks(x, [f"{e}/s{s}" + ("" if b == "learned" else f"/{b}") for e, s, b in runs], fontsize=8)
        ax.set_title(f"{group}: reward before / after best response")
        ax.legend(fontsize=8)
        ax = axes[1, col]
        for e, s, b in runs:
            curve = results.curves[e, s, b, group]
            key = f"reward/{group}"
            width = max(1, curve[key].size // 20)
            ax.plot(curve["episode"], _smooth(curve[key], width), label=f"{e}/s{s}")
        ax.set_title(f"{group}: best-response learning curve (smoothed)")
        ax.set_xlabel("best-response episode")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_welfare_vs_tax(results: Results, summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    plan = results.plan
    panels = (("welfare_total", "total welfare", "learned"),
              ("welfare_consumer_only", "consumer-only welfare",
               "consumer_welfare" if "consumer_welfare" in plan.branches else "learned"),
              ("consumer_reward", "consumer reward", "learned"),
              ("firm_reward", "firm reward", "learned"))
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    fixed = sorted((fixed_rate(plan, b), b) for b in plan.branches if fixed_rate(plan, b) is not None)
    colors = dict(zip(plan.economies, ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown")))
    # One seed: its 95% intervals. Several: every seed's own point (hollow) around the mean of the seeds;
    # a Student-t interval on two or three seed means is too wide to show anything.
    several = len(plan.seeds) > 1
    for ax, (name, label, policy) in zip(axes.ravel(), panels):
        for economy in plan.economies:
            out = summary["economies"][economy]["over_seeds"]["outcomes"]
            per_seed = [data["outcomes"] for data in summary["economies"][economy]["seeds"].values()]
            color = colors.get(economy, "k")
            if fixed:
                rates = [100 * r for r, _ in fixed]
                stats = [out[b][name] for _, b in fixed]
                means = np.array([s["mean"] for s in stats])
                err = None if several else np.nan_to_num(
                    np.array([[s["mean"] - s["ci95"][0], s["ci95"][1] - s["mean"]] for s in stats]).T)
                ax.errorbar(rates, means, yerr=err, marker="o", capsize=3, color=color,
                            label=f"{economy}: fixed taxes" + (" (mean of seeds)" if several else ""))
                if several:
                    for seed_out in per_seed:
                        ax.plot(rates, [seed_out[b][name]["mean"] for _, b in fixed], ls="none", marker="o",
                                mfc="none", ms=6, color=color, alpha=0.7)
            learned = out[policy][name]
            tax = 100 * out[policy]["income_tax_rate"]["mean"]
            lo, hi = learned["ci95"]
            ax.errorbar([tax], [learned["mean"]], yerr=[[learned["mean"] - lo], [hi - learned["mean"]]]
                        if _finite(lo) and not several else None, marker="*", markersize=14, color=color, ls="none",
                        label=f"{economy}: {_branch_style(plan, policy)['label']} (at its mean income tax)")
            if several:
                ax.plot([100 * o[policy]["income_tax_rate"]["mean"] for o in per_seed],
                        [o[policy][name]["mean"] for o in per_seed], ls="none", marker="*", mfc="none", ms=11,
                        color=color, alpha=0.7)
        ax.set_xlabel("tax rate (%)")
        ax.set_title(label)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Fixed tax rates (income = corporate) vs the learned tax policy" +
                 ("; hollow markers: each seed" if several else "; bars: 95% intervals"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _trajectory(results: Results) -> tuple[str, int, dict]:
    plan = results.plan
    economy = "open" if "open" in plan.economies else next(iter(plan.economies))
    seed = plan.seeds[0]
    return economy, seed, results.evaluations[economy, seed, "learned"]["trajectory"]


def figure_rollout_firms(results: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    economy, seed, traj = _trajectory(results)
    firm = traj["firm"]
    fields = ("price", "wage", "labor", "production", "sales", "exports")
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for ax, field in zip(axes.ravel(), fields):
        values = np.asarray(firm[field], dtype=float)  # (steps, firms)
        steps = np.arange(values.shape[0])
        for i in range(values.shape[1]):
            ax.plot(steps, values[:, i], lw=1, label=f"firm {i}")
        ax.set_title(field)
        ax.set_xlabel("step")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"One evaluated episode of the trained economy ({economy}, seed {seed}, learned taxes): firms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_rollout_consumers(results: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    economy, seed, traj = _trajectory(results)
    consumer = traj["consumer"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, field in zip(axes.ravel(), ("hours", "consumption", "budget")):
        values = np.asarray(consumer[field], dtype=float)  # (steps, consumers)
        steps = np.arange(values.shape[0])
        alpha = 0.8 if values.shape[1] <= 10 else 0.15
        ax.plot(steps, values, lw=0.8, alpha=alpha, color="tab:blue")
        ax.plot(steps, values.mean(1), lw=2.2, color="k", label="mean over consumers")
        ax.set_title(f"{field} per consumer")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    ax = axes[1, 1]
    gov = traj["government"]
    steps = np.arange(len(gov["income_tax_rate"]))
    ax.step(steps, gov["income_tax_rate"], where="mid", label="income tax rate")
    ax.step(steps, gov["corporate_tax_rate"], where="mid", label="corporate tax rate")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("government")
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    fig.suptitle(f"The same episode ({economy}, seed {seed}, learned taxes): consumers and taxes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_figures(results: Results, summary: dict, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.png" for name in FIGURES}
    figure_training_curves(results, paths["training_curves"])
    figure_best_response(results, summary, paths["best_response"])
    figure_welfare_vs_tax(results, summary, paths["welfare_vs_tax"])
    figure_rollout_firms(results, paths["rollout_firms"])
    figure_rollout_consumers(results, paths["rollout_consumers"])
    return paths


# ---------------------------------------------------------------------------------------- tracking
def summary_metrics(pipeline: dict) -> dict[str, float]:
    """The headline numbers of one pipeline (economy x seed), as flat MLflow metrics."""
    metrics: dict[str, float] = {}
    w = pipeline["welfare"]
    metrics["summary/welfare_learned"] = w["learned"]["mean"]
    if "best_fixed" in w:
        metrics["summary/welfare_best_fixed"] = w["best_fixed"]["mean"]
        metrics["summary/welfare_best_fixed_rate"] = w["best_fixed"]["rate"]
        metrics["summary/welfare_ratio_learned_to_best_fixed"] = w["ratio_to_best_fixed"]  # dropped when undefined
        metrics["summary/welfare_difference_learned_to_best_fixed"] = w["difference_to_best_fixed"]
    if pipeline.get("welfare_consumer_only"):
        metrics["summary/welfare_consumer_only"] = pipeline["welfare_consumer_only"]["consumer_welfare"]["mean"]
    for group, e in pipeline["epsilon"].items():
        metrics[f"summary/epsilon_relative/{group}"] = e["relative"]
        metrics[f"summary/epsilon_absolute/{group}"] = e["absolute"]
    return {k: float(v) for k, v in metrics.items() if _finite(v)}


def log_to_tracking(plan: WorkflowPlan, summary: dict, files: list[Path]) -> list[str]:
    """Headline numbers and report files on every pipeline's parent run; returns the parent run ids."""
    logged = []
    for economy in plan.economies:
        for seed in plan.seeds:
            config = ExperimentConfig.from_dict(plan.experiment_dict(economy, seed, "evaluate")).tracking
            if not config.enabled or not config.pipeline:
                continue
            from mlflow.entities import Metric

            from ..tracking import _retry, client_for, experiment_for, find_or_create_parent, tracking_uri

            uri = tracking_uri(config)
            client = client_for(uri)
            # Found by its tags, exactly as the rules found it, so the report lands on the same run.
            parent = find_or_create_parent(client, experiment_for(client, config, uri), config.pipeline)
            stamp = int(time.time() * 1000)
            metrics = summary_metrics(summary["economies"][economy]["seeds"][str(seed)])
            _retry(client.log_batch, parent, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()])
            for path in files:
                artifact_dir = "report/figures" if path.suffix == ".png" else "report"
                _retry(client.log_artifact, parent, str(path), artifact_dir)
            _retry(client.set_tag, parent, "dge.report", "true")
            _retry(client.set_terminated, parent, "FINISHED")
            logged.append(parent)
    return logged


# ---------------------------------------------------------------------------------------- entry
def make_report(root: Path, workflow_config: Path, logs: Path | None = None, track: bool = True) -> dict:
    config = yaml.safe_load(workflow_config.read_text()) or {}
    plan = WorkflowPlan(config)
    if logs is None:
        logs = root.parent.parent / "logs" / plan.profile
    results = Results(root, plan)
    summary = build_summary(results, logs)
    figures = write_figures(results, summary, root / "figures")
    summary["figures"] = {name: str(p.relative_to(root)) for name, p in figures.items()}
    clean = _clean(summary)
    (root / "summary.json").write_text(json.dumps(clean, indent=2))
    (root / "summary.md").write_text(render_markdown(summary, results))
    if track:
        parents = log_to_tracking(plan, clean, [root / "summary.md", root / "summary.json", *figures.values()])
        if parents:
            print(f"logged the report to {len(parents)} parent run(s)", file=sys.stderr)
    return clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tables and figures of one workflow profile.")
    parser.add_argument("--root", type=Path, required=True, help="results/<profile>")
    parser.add_argument("--workflow-config", type=Path, required=True, help="the merged workflow config (YAML)")
    parser.add_argument("--logs", type=Path, default=None, help="benchmark records (default: logs/<profile>)")
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    args = parser.parse_args(argv)
    try:
        summary = make_report(args.root, args.workflow_config, args.logs, track=not args.no_tracking)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    w = summary["welfare"]
    best = f", best fixed {w['best_fixed']['mean']:.1f} at {w['best_fixed']['rate']:.0%}" if "best_fixed" in w else ""
    print(f"{summary['primary_economy']}: learned welfare {w['learned']['mean']:.1f}{best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
