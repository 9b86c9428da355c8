"""Per-firm outcomes of the learned taxes: who employs, who sells at home, and which firms the consumers ignore."""

from __future__ import annotations

import numpy as np

from ...learning.metrics import mean_ci95
from .results import Results

FIRM_COLUMNS = ("price", "wage", "hours", "workers", "production", "sales", "exports", "profit", "reward")

# A firm with fewer workers than this per step, on average over its evaluated episodes (one worker in ten
# steps), counts as employing nobody in the report's per-seed check of "every firm employs someone".
IDLE_FIRM_WORKERS = 0.1

# A firm whose employer probability moves by less than this between the lowest and the highest wage of
# the grid is one whose wage the consumers ignore (a firm that reads as a firm moves it by 0.5 or more).
IGNORED_WAGE_RESPONSE = 0.05


def pooled_firm_samples(results: Results, economy: str, branch: str,
                        seeds: list[int] | None = None) -> dict[str, np.ndarray]:
    """(economy-episodes of the given seeds, default every seed, firms) arrays of per-firm episode means."""
    fields: dict[str, list[np.ndarray]] = {}
    for seed in results.seeds(economy) if seeds is None else seeds:
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


def idle_firms(per_firm_table: dict) -> list[int]:
    """Firms that employ nobody (fewer than IDLE_FIRM_WORKERS workers per step on average)."""
    return [i for i, stat in enumerate(per_firm_table.get("workers", [])) if stat["mean"] < IDLE_FIRM_WORKERS]


def ignored_firms(response: dict | None) -> list[int] | None:
    """Firms whose posted wage does not move the consumers' employer choice (None without a probe)."""
    if not response:
        return None
    return [i for i, row in enumerate(response["employer_probability"])
            if abs(row[-1] - row[0]) < IGNORED_WAGE_RESPONSE]


def firms_summary(results: Results, economy: str) -> dict:
    """Per-firm tables pooled and per seed, with each seed's idle firms and the consumers' answer to each firm.

    "Every firm employs someone" is a property of one converged economy, so it is judged per seed:
    pooling would let one seed's live firm hide another seed's dead one.
    """
    seeds = results.seeds(economy)
    by_seed = {str(seed): per_firm(results, economy, "learned", [seed]) for seed in seeds}
    responses = {str(seed): results.evaluations[economy, seed, "learned"].get("consumer_response")
                 for seed in seeds}
    return {
        "per_firm": per_firm(results, economy, "learned"),
        "per_firm_by_seed": by_seed,
        "idle_firms_by_seed": {seed: idle_firms(table) for seed, table in by_seed.items()},
        "consumer_response_by_seed": responses,
        "ignored_firms_by_seed": {seed: ignored_firms(response) for seed, response in responses.items()},
    }
