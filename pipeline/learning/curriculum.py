"""The structured curriculum (spec 6) evaluated at an episode: who trains, masks, anneals, entropy.

All schedules are functions of the global episode counter e, exactly as in the reference code, so
a stage that resumes or starts from another stage's checkpoint sees the same schedule values as an
uninterrupted run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from envs.rbc.actions import firm_mask_from_ranges, government_mask_from_caps
from envs.rbc.config import RBCConfig

from ..config import GROUPS, CurriculumConfig


@dataclass(frozen=True)
class EpisodePlan:
    """Everything the trainer applies for one episode."""

    episode: int
    train: tuple[str, ...]
    firm_mask: torch.Tensor
    government_mask: torch.Tensor
    labor_disutility_anneal: float
    entropy: dict[str, float]
    max_tax: float

    @property
    def firm_actions_allowed(self) -> int:
        return int(self.firm_mask.sum())


class Curriculum:
    """Stage boundaries and schedules of one pipeline variant.

    `fixed_government=True` is the fixed-tax baseline: the government never trains and its (fixed)
    action must always be allowed, so the tax range is fully open. `max_corporate_tax` keeps a
    learned government's corporate rate at or below a cap for the whole run (a branch's policy
    space, not a schedule): a profit-only tax at 80-100% makes hiring nobody the firms' best response.
    """

    def __init__(
        self,
        config: CurriculumConfig,
        economy: RBCConfig,
        fixed_government: bool = False,
        max_corporate_tax: float | None = None,
    ):
        self.config = config
        self.economy = economy
        self.fixed_government = fixed_government
        self.max_corporate_tax = 1.0 if max_corporate_tax is None or fixed_government else max_corporate_tax
        self.bounds = config.stage_bounds()
        self.training_start = {
            g: next((self.bounds[s.name][0] for s in config.stages if g in s.train), None) for g in GROUPS
        }

    @property
    def total_episodes(self) -> int:
        return self.config.total_episodes

    def stage_at(self, episode: int) -> str:
        for name, (start, end) in self.bounds.items():
            if start <= episode < end:
                return name
        return self.config.stages[-1].name

    def trains(self, episode: int) -> tuple[str, ...]:
        stage = self.config.stages[self.config.stage_index(self.stage_at(episode))]
        groups = tuple(g for g in GROUPS if g in stage.train)
        if self.fixed_government:
            groups = tuple(g for g in groups if g != "government")
        return groups

    def labor_disutility_anneal(self, episode: int) -> float:
        decay = self.config.labor_disutility_decay
        return 1.0 if decay is None else 1.0 - math.exp(-episode / decay)

    def entropy_coefficient(self, group: str, episode: int) -> float:
        schedule = self.config.entropy[group]
        start = self.training_start[group]
        elapsed = 0 if start is None else max(episode - start, 0)
        return schedule.initial * max(math.exp(-elapsed / schedule.decay), schedule.floor)

    def firm_mask(self, episode: int) -> torch.Tensor:
        e = self.economy
        schedule = self.config.firm_mask
        if schedule is None:
            return torch.ones(e.n_firm_actions, dtype=torch.bool)
        opened = _progress(episode, schedule.start, schedule.end)
        low_p, high_p = min(e.price_grid), max(e.price_grid)
        low_w, high_w = min(e.wage_grid), max(e.wage_grid)
        cp, cw = schedule.center_price, schedule.center_wage
        price_range = (cp - (cp - low_p) * opened, cp + (high_p - cp) * opened)
        wage_range = (cw - (cw - low_w) * opened, cw + (high_w - cw) * opened)
        mask = firm_mask_from_ranges(e, price_range, wage_range)
        if not mask.any():
            raise ValueError(
                f"curriculum.firm_mask center (price {cp}, wage {cw}) is not on the price/wage grids, "
                f"so no firm action is allowed at episode {episode}"
            )
        return mask

    def max_tax(self, episode: int) -> float:
        schedule = self.config.tax_mask
        if schedule is None or self.fixed_government:
            return 1.0
        return _progress(episode, schedule.start, schedule.end)

    def plan(self, episode: int) -> EpisodePlan:
        cap = self.max_tax(episode)
        return EpisodePlan(
            episode=episode,
            train=self.trains(episode),
            firm_mask=self.firm_mask(episode),
            government_mask=government_mask_from_caps(self.economy, cap, min(cap, self.max_corporate_tax)),
            labor_disutility_anneal=self.labor_disutility_anneal(episode),
            entropy={g: self.entropy_coefficient(g, episode) for g in GROUPS},
            max_tax=cap,
        )


def _progress(episode: int, start: int, end: int) -> float:
    """Fraction of a linear opening schedule completed at `episode` (1 once `end` is reached)."""
    if episode >= end:
        return 1.0
    if episode <= start:
        return 0.0
    return (episode - start) / (end - start)
