"""Observation encodings (spec section 4): the global part once per economy, private parts per agent.

All 111 agents see the same global state, so it is built and stored once per economy; the
policies read it beside each agent's private features. `full_observation` rebuilds the spec's
per-agent input (global then private, in the spec's order) for users who want one flat tensor.

Two encodings of the large, wide-ranging quantities (stocks and budgets):
- `digits`: the reference code's nested remainders, feature_k = (x mod 10^(k+1)) / 10^(k+1);
- `symlog`: sign(x) * log1p(|x|) / SYMLOG_SCALE, one feature per quantity.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .config import RBCConfig
from .dynamics import EconomyParameters, EconomyState

SYMLOG_SCALE = 10.0


class ObservationEncoder:
    """Builds the global, consumer, firm and government observations from an EconomyState."""

    def __init__(self, config: RBCConfig, params: EconomyParameters):
        self.encoding = config.observation_encoding
        self.n_firms = config.n_firms
        self.n_digits = config.n_digits
        self.price_scale = max(config.price_grid) or 1.0
        self.wage_scale = max(config.wage_grid) or 1.0
        self.time_scale = float(config.episode_length)
        self.theta_scale = config.labor_disutility or 1.0
        self.capital_scale = max(config.initial_capital)
        device = params.alpha.device
        self.firm_static = torch.cat(
            [params.alpha.unsqueeze(-1), torch.eye(config.n_firms, device=device)], dim=-1
        )  # (F, 1 + F): alpha, one-hot id
        self.moduli = torch.tensor(
            [10.0 ** (k + 1) for k in range(self.n_digits)], dtype=torch.float64, device=device
        )

    # ------------------------------------------------------------------ sizes
    @property
    def width(self) -> int:
        """Features per encoded scalar (stock or budget)."""
        return self.n_digits if self.encoding == "digits" else 1

    @property
    def global_dim(self) -> int:
        return 3 * self.n_firms + self.n_firms * self.width + 3

    @property
    def consumer_dim(self) -> int:
        return self.width + 1

    @property
    def firm_dim(self) -> int:
        return self.width + 2 + self.n_firms

    # ------------------------------------------------------------------ encodings
    def encode_amount(self, x: Tensor) -> Tensor:
        """(...,) -> (..., width): one wide-range scalar in the configured encoding."""
        if self.encoding == "digits":
            wide = x.to(torch.float64).unsqueeze(-1)
            remainder = torch.fmod(wide, self.moduli)
            remainder = torch.where(remainder < 0, remainder + self.moduli, remainder)  # floor-mod
            return (remainder / self.moduli).to(x.dtype)
        return (torch.sign(x) * torch.log1p(x.abs()) / SYMLOG_SCALE).unsqueeze(-1)

    def global_observation(self, state: EconomyState) -> Tensor:
        """(E, G): prices, wages, stocks, over-demand flags, income tax, corporate tax, time."""
        E = state.price.shape[0]
        return torch.cat(
            [
                state.price / self.price_scale,
                state.wage / self.wage_scale,
                self.encode_amount(state.inventory).reshape(E, -1),
                state.overdemanded,
                state.income_tax.unsqueeze(-1),
                state.corporate_tax.unsqueeze(-1),
                (state.time / self.time_scale).unsqueeze(-1),
            ],
            dim=-1,
        )

    def with_firm_terms(self, global_obs: Tensor, firm: int, price: float | None = None,
                        wage: float | None = None) -> Tensor:
        """A copy of global observations in which one firm posts the given price and/or wage.

        For probing a trained policy's answer to one firm's terms with everything else as observed.
        """
        out = global_obs.clone()
        if price is not None:
            out[..., firm] = price / self.price_scale
        if wage is not None:
            out[..., self.n_firms + firm] = wage / self.wage_scale
        return out

    def consumer_observation(self, state: EconomyState) -> Tensor:
        """(E, C, width + 1): own budget, own (annealed) labor disutility."""
        return torch.cat(
            [self.encode_amount(state.consumer_budget), (state.theta / self.theta_scale).unsqueeze(-1)], dim=-1
        )

    def firm_observation(self, state: EconomyState) -> Tensor:
        """(E, F, width + 2 + F): own budget, capital, alpha, one-hot identity."""
        E, F = state.firm_budget.shape
        return torch.cat(
            [
                self.encode_amount(state.firm_budget),
                (state.capital / self.capital_scale).unsqueeze(-1),
                self.firm_static.expand(E, F, -1),
            ],
            dim=-1,
        )


def full_observation(global_observation: Tensor, private_observation: Tensor) -> Tensor:
    """The spec-4 per-agent input: the global part broadcast to every agent, then the private part."""
    n_agents = private_observation.shape[-2]
    shared = global_observation.unsqueeze(-2).expand(*global_observation.shape[:-1], n_agents, -1)
    return torch.cat([shared, private_observation], dim=-1)
