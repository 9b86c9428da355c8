"""Shared helpers for the economy tests.

The helpers here restate the specification's encodings (action layout, grids) independently of
the package, so that tests compare the implementation against the spec rather than against itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the suite also runs from a plain checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from envs.rbc.config import RBCConfig  # noqa: E402
from envs.rbc.dynamics import EconomyState  # noqa: E402

# The local smoke DAG and its tracking server, once per session: the workflow tests read the run and
# the cluster test compares a SLURM run with it.
from workflow_support import smoke_run, tracking_server  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _one_thread():
    """Other jobs share this machine; one intra-op thread keeps test timings stable."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def run_installed() -> bool:
    """Whether ./.venv holds what `./run` would install here (so a command through ./run installs nothing).

    Asked of ./run itself: its install rule compares the stamp it wrote with pyproject.toml's hash and the
    extras this call wants (the gpu extra where CI=true).
    """
    check = 'source ./run && stamp_covers .venv/.installed "$(sha256sum < pyproject.toml | cut -c1-16)" "$(wanted_extras)"'
    done = subprocess.run(["bash", "-c", check], cwd=ROOT, capture_output=True, text=True)
    return (ROOT / ".venv" / "bin" / "python").exists() and done.returncode == 0


def make_state(**values) -> EconomyState:
    """An EconomyState from nested lists (one row per economy); every field must be given."""
    return EconomyState(**{name: torch.tensor(v, dtype=torch.float32) for name, v in values.items()})


def spec_decode(config: RBCConfig, consumer_action, firm_action, government_action):
    """Spec section 2 (in float64): consumer heads (goods..., hours, employer); firm 5*price+wage; tax 6*income+corporate."""
    F = config.n_firms
    goods = torch.tensor(config.consumption_grid, dtype=torch.float64)[consumer_action[..., :F]]
    hours = torch.tensor(config.hours_grid, dtype=torch.float64)[consumer_action[..., F]]
    employer = consumer_action[..., F + 1]
    n_w, n_s = len(config.wage_grid), len(config.corporate_tax_grid)
    price = torch.tensor(config.price_grid, dtype=torch.float64)[firm_action // n_w]
    wage = torch.tensor(config.wage_grid, dtype=torch.float64)[firm_action % n_w]
    g = government_action.reshape(*government_action.shape[:-1])
    income = torch.tensor(config.income_tax_grid, dtype=torch.float64)[g // n_s]
    corporate = torch.tensor(config.corporate_tax_grid, dtype=torch.float64)[g % n_s]
    return goods, hours, employer, price, wage, income, corporate


def crra(c, eta: float = 0.1):
    """Spec 5.1: u(c) = ((c + 1)^(1 - eta) - 1) / (1 - eta)."""
    return ((c + 1.0) ** (1.0 - eta) - 1.0) / (1.0 - eta)
