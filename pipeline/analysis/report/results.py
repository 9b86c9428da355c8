"""The files the workflow's rules wrote for one profile, read once and addressed by economy, seed and branch."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ...config import ExperimentConfig
from ...orchestration.plan import ABLATION, PREFIX, WorkflowPlan


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


def fixed_rate(plan: WorkflowPlan, branch: str) -> float | None:
    return plan.branches[branch].fixed_tax if branch in plan.branches else None


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
                self._read_pipeline(economy, seed)

    def _read_pipeline(self, economy: str, seed: int) -> None:
        plan = self.plan
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
