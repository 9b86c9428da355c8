"""Small experiment configurations and helpers shared by the pipeline tests.

Every economy here is tiny (a handful of consumers, two firms, a few parallel economies) so the
whole pipeline suite stays fast on a shared two-core machine.
"""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

import yaml

from pipeline.config import ExperimentConfig
from pipeline.learning.curriculum import Curriculum
from pipeline.learning.session import Session

# The four stages of the paper's curriculum, shrunk to a few episodes each, with the firm mask
# opening over the first stage and the tax mask over the third, so every schedule changes value
# inside a short run.
SMALL_PIPELINE = {
    "economy": {"n_consumers": 5, "n_firms": 2},
    "training": {"num_envs": 4, "checkpoint_every": 3, "threads": 1},
    "tracking": {"enabled": False},
    "curriculum": {
        "stages": [
            {"name": "consumers", "episodes": 8, "train": ["consumer"]},
            {"name": "firms", "episodes": 6, "train": ["consumer", "firm"]},
            {"name": "taxes", "episodes": 5, "train": ["consumer", "firm"]},
            {"name": "government", "episodes": 5, "train": ["consumer", "firm", "government"]},
        ],
        "firm_mask": {"start": 0, "end": 8},
        "tax_mask": {"start": 14, "end": 19},
        "labor_disutility_decay": 8.0,
        "entropy": {g: {"decay": 8.0} for g in ("consumer", "firm", "government")},
    },
    "best_response": {"episodes": 4, "eval_episodes": 2, "window": 2},
    "evaluation": {"episodes": 2, "num_envs": 4},
}


def small_config_dict(**sections) -> dict:
    """SMALL_PIPELINE with some sections replaced or updated (one level deep)."""
    data = copy.deepcopy(SMALL_PIPELINE)
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name].update(value)
        else:
            data[name] = value
    return data


def small_config(**sections) -> ExperimentConfig:
    return ExperimentConfig.from_dict(small_config_dict(**sections))


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def single_stage(name: str, episodes: int, train: list[str], entropy: dict[str, float] | None = None) -> dict:
    """A one-stage curriculum without masks or annealing: the full action sets and full disutility."""
    return {
        "stages": [{"name": name, "episodes": episodes, "train": train}],
        "firm_mask": None,
        "tax_mask": None,
        "labor_disutility_decay": None,
        "entropy": {g: {"initial": c, "decay": 1e9} for g, c in (entropy or {}).items()},
    }


def train_episodes(session: Session, curriculum: Curriculum, episodes: int) -> list[dict]:
    return [session.run_episode(curriculum.plan(session.episode))[1] for _ in range(episodes)]


def evaluate(session: Session, curriculum: Curriculum, episodes: int, key: str) -> float:
    """Mean of a metric over episodes of the current (sampling) policy, without learning."""
    plan = curriculum.plan(session.episode)
    return statistics.mean(session.run_episode(plan, learn=False)[1][key] for _ in range(episodes))
