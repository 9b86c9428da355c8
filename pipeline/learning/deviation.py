"""One agent deviating alone: its own copy of its type's network, while every other agent keeps the shared one.

An epsilon-equilibrium asks what a single agent gains by changing its own policy while everyone else,
its own type included, plays on as before. With parameter sharing every agent of a type runs one
network, so a single deviation needs a second network that answers for that agent only; the rest of
the type's outputs come from the frozen shared network. Gradients reach the copy through the chosen
agent's outputs alone.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class IndividualDeviation(nn.Module):
    """The shared network of a type (frozen) for every agent but `agent`, a trainable copy for `agent`.

    Both networks run on every agent, so any network the factory builds works, including ones that look
    across agents; the copy's outputs are then kept for the chosen agent only.
    """

    def __init__(self, shared: nn.Module, agent: int, n_agents: int):
        super().__init__()
        if not 0 <= agent < n_agents:
            raise ValueError(f"agent {agent} is not an agent of this type; allowed: 0..{n_agents - 1}")
        self.agent = agent
        self.n_agents = n_agents
        self.deviant = copy.deepcopy(shared)
        self.shared = shared
        for parameter in self.shared.parameters():
            parameter.requires_grad_(False)
        chosen = torch.zeros(n_agents, dtype=torch.bool)
        chosen[agent] = True
        self.register_buffer("chosen", chosen, persistent=False)

    def forward(self, global_obs: Tensor | None, private_obs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            shared_logits, shared_value = self.shared(global_obs, private_obs, mask)
        logits, value = self.deviant(global_obs, private_obs, mask)
        trailing = logits.dim() - private_obs.dim() + 1  # dims after the agent dim: (heads, choices) or (actions,)
        pick_logits = self.chosen.view(self.n_agents, *([1] * trailing))
        return (torch.where(pick_logits, logits, shared_logits),
                torch.where(self.chosen.view(self.n_agents, 1), value, shared_value))
