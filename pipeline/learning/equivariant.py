"""A consumer network that treats firms alike: `policy.factory: pipeline.learning.equivariant:build`.

The spec's consumer network (spec 7.2) reads every firm's price and wage through one MLP and gives each
good and each employer its own output weights. It can therefore learn "never work for firm 4" or "buy
good 2 whatever it costs" as facts about a firm's *index*, and a firm that consumers have learned to
avoid gets no workers, so its own choices no longer change its reward and nothing pulls it back (the
idle firm of docs/results.md). Here a consumer scores every firm with one shared function of that
firm's posted price, wage, stock and over-demand flag and of the consumer's own state: consumption of
good i and the employer choice depend on firm i's posted terms, not on which firm it is. The hours head
and the value come from the consumer's state and the whole economy, as in the spec's network. Firms and
the government keep the spec's network.

This is an alternative to the spec's architecture, not a part of the model. The default and smoke
profiles use it; the paper profile keeps the spec's network (`policy.factory: null`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .distributions import mask_logits
from .policies import ActorCriticNetwork, GroupLayout, resolve_bf16

FIRM_TERMS = 3  # price, wage, over-demand flag, besides the encoded stock


class FirmEquivariantConsumerNetwork(nn.Module):
    """(global, private, mask) -> (masked logits, value) with per-firm heads shared across firms."""

    def __init__(self, layout: GroupLayout, hidden_sizes: tuple[int, ...] = (128, 128), pair_width: int = 32,
                 bf16: bool = False):
        super().__init__()
        heads, choices = layout.logits_shape
        self.n_firms = heads - 2  # one consumption head per good, then hours, then employer
        stock_width, remainder = divmod(layout.global_dim - 3 - FIRM_TERMS * self.n_firms, self.n_firms)
        if self.n_firms < 1 or remainder or stock_width < 1:
            raise ValueError(f"consumer layout {layout} does not read as prices, wages, stocks and flags per firm")
        self.stock_width = stock_width
        self.choices = choices
        self.bf16 = bf16
        # The consumer's own trunk: the spec's MLP over the whole economy and its own state.
        self.trunk = ActorCriticNetwork(
            GroupLayout(layout.group, layout.n_agents, layout.global_dim, layout.private_dim, (choices,)),
            hidden_sizes, bf16=False,
        )
        width = hidden_sizes[-1]
        self.firm_in = nn.Linear(FIRM_TERMS + stock_width, pair_width)
        self.consumer_in = nn.Linear(width, pair_width, bias=False)
        self.pair = nn.Sequential(nn.ReLU(), nn.Linear(pair_width, pair_width), nn.ReLU())
        self.pair_out = nn.Linear(pair_width, choices + 1)  # the good's consumption choices, the employer score

    def firm_terms(self, global_obs: Tensor) -> Tensor:
        """(..., G) -> (..., F, terms): each firm's price, wage, flag and encoded stock, from the global state."""
        F, w = self.n_firms, self.stock_width
        price, wage = global_obs[..., :F], global_obs[..., F:2 * F]
        stock = global_obs[..., 2 * F:2 * F + F * w].reshape(*global_obs.shape[:-1], F, w)
        flag = global_obs[..., 2 * F + F * w:3 * F + F * w]
        return torch.cat([price.unsqueeze(-1), wage.unsqueeze(-1), flag.unsqueeze(-1), stock], dim=-1)

    def forward(self, global_obs: Tensor, private_obs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16 and private_obs.device.type == "cpu"):
            trunk = self.trunk
            pre = trunk.private_in(private_obs) + trunk.global_in(global_obs).unsqueeze(-2)
            features = trunk.hidden(torch.relu(pre))  # (..., C, width)
            own = trunk.head(features)  # (..., C, choices + 1): hours logits (padded), value
            firms = self.firm_in(self.firm_terms(global_obs)).unsqueeze(-3)  # (..., 1, F, pair)
            pairs = self.pair_out(self.pair(firms + self.consumer_in(features).unsqueeze(-2)))  # (..., C, F, ch + 1)
        own, pairs = own.float(), pairs.float()
        consumption = pairs[..., : self.choices]  # (..., C, F, choices)
        employer = torch.zeros_like(consumption[..., 0, :])  # (..., C, choices), padding masked below
        employer[..., : self.n_firms] = pairs[..., self.choices]
        hours = own[..., : self.choices]
        logits = torch.cat([consumption, hours.unsqueeze(-2), employer.unsqueeze(-2)], dim=-2)
        return mask_logits(logits, mask), own[..., self.choices:]


def build(layout: GroupLayout, options: dict) -> nn.Module:
    """The project's policy factory: firm-equivariant consumers, the spec's network for firms and government."""
    hidden = tuple(options.get("hidden_sizes", (128, 128)))
    bf16 = resolve_bf16(options.get("bf16", False))
    if layout.group == "consumer":
        return FirmEquivariantConsumerNetwork(layout, hidden, bf16=bf16)
    return ActorCriticNetwork(layout, hidden, bf16)
