"""The files the workflow's rules wrote for one profile, read once and addressed by economy, seed and branch."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ...config import ExperimentConfig
from ...orchestration.archive import stored_dir
from ...orchestration.plan import ABLATION, PREFIX, WorkflowPlan


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """A per-episode metrics CSV as columns (missing cells are NaN; a file without rows has no columns)."""
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


def fixed_rates(plan: WorkflowPlan, branch: str) -> tuple[float, float] | None:
    """(income, corporate) of a fixed-tax branch, None for a learned government or the ablation."""
    return plan.branches[branch].fixed_rates if branch in plan.branches else None


class Results:
    """Everything the rules wrote for one profile, addressed by economy, seed, branch (and type and probe)."""

    def __init__(self, root: Path, plan: WorkflowPlan, stored: set[tuple[str, int]] | frozenset = frozenset()):
        self.root = root
        self.plan = plan
        # Pipelines read from their stored copy under <root>/archive (pipeline.orchestration.archive).
        self.stored = set(stored)
        self.evaluations: dict[tuple[str, int, str], dict] = {}
        self.best_responses: dict[tuple[str, int, str, str, str], dict] = {}
        self.curves: dict[tuple[str, int, str, str, str], dict[str, np.ndarray]] = {}
        self._metrics: dict[Path, dict[str, np.ndarray]] = {}
        first = plan.pipelines()[0]
        # Stage lengths and who trains when are the same for every economy and seed of a profile.
        curriculum = ExperimentConfig.from_dict(plan.experiment_dict(*first, "train")).curriculum
        self.stages = curriculum.stages
        self.stage_bounds = {**curriculum.stage_bounds(), ABLATION: (0, curriculum.total_episodes)}
        self.evaluation = ExperimentConfig.from_dict(plan.experiment_dict(*first, "evaluate")).evaluation
        self.best_response = ExperimentConfig.from_dict(plan.experiment_dict(*first, "best_response")).best_response
        self.episode_length = ExperimentConfig.from_dict(plan.experiment_dict(*first, "train")).economy.episode_length
        for economy, seed in plan.pipelines():
            self._read_pipeline(economy, seed)

    def _read_pipeline(self, economy: str, seed: int) -> None:
        plan = self.plan
        for branch in plan.evaluated_branches(economy):
            path = self.pipe(economy, seed) / branch / "evaluation.json"
            self.evaluations[economy, seed, branch] = json.loads(path.read_text())
        for branch in plan.best_response_branches:
            for group in plan.best_response_types:
                for probe in plan.best_response_probes(group):
                    base = self.pipe(economy, seed) / branch / "best_response" / group / probe
                    key = economy, seed, branch, group, probe
                    self.best_responses[key] = json.loads((base / "best_response.json").read_text())
                    self.curves[key] = read_metrics(base / "curve.csv")

    # ------------------------------------------------------------------ addressing
    def pipe(self, economy: str, seed: int) -> Path:
        if (economy, seed) in self.stored:
            return stored_dir(self.root, economy, seed)
        return self.root / economy / f"seed{seed}"

    def seeds(self, economy: str) -> list[int]:
        return self.plan.seeds_of(economy)

    def fixed_branches(self, economy: str) -> list[str]:
        """Every fixed-tax baseline the economy ran: the equal rates and, where asked, the tax grid."""
        return [b for b in self.plan.branches_of(economy) if fixed_rates(self.plan, b) is not None]

    def equal_rate_branches(self, economy: str) -> list[str]:
        """The baselines of the profile's `fixed_taxes` (income = corporate, the paper's design)."""
        listed = [float(r) for r in self.plan.fixed_taxes]
        return [b for b in self.fixed_branches(economy)
                if any(abs(fixed_rates(self.plan, b)[0] - r) < 1e-9 and abs(fixed_rates(self.plan, b)[1] - r) < 1e-9
                       for r in listed)]

    def collapsed(self, economy: str, seed: int, branch: str) -> bool:
        """Whether the branch stopped early because its economy collapsed (fixed-tax baselines only)."""
        return self.evaluations[economy, seed, branch].get("collapsed_at") is not None

    # ------------------------------------------------------------------ training logs
    def metrics(self, economy: str, seed: int, branch: str, stage: str) -> dict[str, np.ndarray]:
        """A stage's metrics rows; a collapsed branch's stages may stop early or hold no rows at all."""
        owner = PREFIX if stage in self.plan.prefix_stages else branch
        if branch == ABLATION:
            owner, stage = ABLATION, ABLATION
        path = self.pipe(economy, seed) / owner / f"{stage}.metrics.csv"
        if path not in self._metrics:
            rows = read_metrics(path)
            first, last = self.stage_bounds[stage]
            episodes = rows.get("episode", np.array([]))
            stopped = owner != PREFIX and self.collapsed(economy, seed, branch)
            expected = np.arange(first, first + episodes.size if stopped else last)
            if episodes.size > last - first or not np.array_equal(episodes, expected):
                found = f"{int(episodes[0])}-{int(episodes[-1])} ({episodes.size} rows)" if episodes.size else "none"
                raise ValueError(f"{path}: episodes {found}, expected {first}-{last - 1}: the stage's metrics are "
                                 "incomplete; delete its checkpoint and metrics and rerun the workflow")
            self._metrics[path] = rows
        return self._metrics[path]

    def training_log(self, economy: str, seed: int, branch: str) -> dict[str, np.ndarray]:
        """A branch's whole training history on its full episode range: the shared prefix, then its own
        stages; the episodes a collapsed branch did not train are NaN."""
        stages = [ABLATION] if branch == ABLATION else [s.name for s in self.stages]
        first, last = self.stage_bounds[stages[0]][0], self.stage_bounds[stages[-1]][1]
        parts = [self.metrics(economy, seed, branch, stage) for stage in stages]
        keys = {k for p in parts for k in p if k != "episode"}
        log = {"episode": np.arange(first, last, dtype=float)}
        for key in keys:
            column = np.full(last - first, np.nan)
            for part in parts:
                if key in part:
                    column[part["episode"].astype(int) - first] = part[key]
            log[key] = column
        return log
