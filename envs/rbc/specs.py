"""The environment's TorchRL specs, built once per RBCEnv from its config and observation encoder.

Each group's sub-Composite has shape (economies, agents), TorchRL's multi-agent layout; the global
observation and the done flags sit at the root. Consumers' actions are a MultiCategorical over their
heads (11 consumption levels per good, 5 hours, N_f employers), whose mask TorchRL keeps flat; the
`action_mask` observation keeps it padded (envs/rbc/actions.py converts, docs/model.md explains).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torchrl.data import Categorical, Composite, MultiCategorical, Unbounded

from .config import RBCConfig
from .observations import ObservationEncoder

# Economic readout written under each group (see docs/model.md for units).
CONSUMER_READOUT = ("budget", "consumption", "hours", "employer", "labor_income", "income_tax", "transfer")
FIRM_READOUT = ("budget", "capital", "inventory", "price", "wage", "production", "sales", "exports", "revenue",
                "wage_bill", "investment", "profit", "corporate_tax")
GOVERNMENT_READOUT = ("income_tax_rate", "corporate_tax_rate", "revenue", "welfare")


class EnvSpecs(NamedTuple):
    observation: Composite
    action: Composite
    reward: Composite
    done: Composite


def build_specs(
    config: RBCConfig, encoder: ObservationEncoder, num_envs: int, device: torch.device, mask_shape: tuple[int, int]
) -> EnvSpecs:
    E, C, F = num_envs, config.n_consumers, config.n_firms
    H, K = mask_shape

    def real(*shape):
        return Unbounded(shape=(E, *shape), dtype=torch.float32, device=device)

    def flag(*shape):
        return Categorical(n=2, shape=(E, *shape), dtype=torch.bool, device=device)

    consumer_obs = {name: real(C) for name in CONSUMER_READOUT}
    consumer_obs.update(
        observation=real(C, encoder.consumer_dim),
        action_mask=flag(C, H, K),
        consumption=real(C, F),
        employer=Categorical(n=F, shape=(E, C), dtype=torch.int64, device=device),
    )
    firm_obs = {name: real(F) for name in FIRM_READOUT}
    firm_obs.update(observation=real(F, encoder.firm_dim), action_mask=flag(F, config.n_firm_actions))
    government_obs = {name: real(1) for name in GOVERNMENT_READOUT}
    government_obs.update(observation=real(1, encoder.global_dim), action_mask=flag(1, config.n_government_actions))
    observation = Composite(
        global_observation=real(encoder.global_dim),
        consumer=Composite(consumer_obs, shape=(E, C)),
        firm=Composite(firm_obs, shape=(E, F)),
        government=Composite(government_obs, shape=(E, 1)),
        shape=(E,),
    )
    nvec = torch.tensor(config.consumer_head_sizes)
    action = Composite(
        consumer=Composite(
            action=MultiCategorical(nvec=nvec, shape=(E, C, H), dtype=torch.int64, device=device), shape=(E, C)
        ),
        firm=Composite(
            action=Categorical(n=config.n_firm_actions, shape=(E, F), dtype=torch.int64, device=device), shape=(E, F)
        ),
        government=Composite(
            action=Categorical(n=config.n_government_actions, shape=(E, 1), dtype=torch.int64, device=device),
            shape=(E, 1),
        ),
        shape=(E,),
    )
    reward = Composite(
        {group: Composite(reward=real(n, 1), shape=(E, n)) for group, n in (("consumer", C), ("firm", F), ("government", 1))},
        shape=(E,),
    )
    done = Composite(done=flag(1), terminated=flag(1), shape=(E,))
    return EnvSpecs(observation, action, reward, done)
