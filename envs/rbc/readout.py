"""The TensorDict an RBCEnv returns at reset and after each step: observations, rewards, readout.

Laid out in TorchRL's multi-agent convention, one sub-tensordict per group with shape (economies,
agents); the global observation and the done flags at the root; each group's economic readout beside
its observation (docs/model.md lists every key with its unit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict, TensorDictBase

from .dynamics import EconomyState, StepOutcome

if TYPE_CHECKING:
    from .env import RBCEnv


def step_output(
    env: RBCEnv,
    before: EconomyState,
    after: EconomyState,
    outcome: StepOutcome | None,
    hours: torch.Tensor | None = None,
    employer: torch.Tensor | None = None,
    observations: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> TensorDictBase:
    """Observations of `after`, rewards and the readout of the step from `before` to `after`.

    `observations` (global, consumer, firm), when a kernel backend has already encoded `after`.
    """
    E, C, F = env.num_envs, env.config.n_consumers, env.config.n_firms
    enc = env.encoder
    if observations is None:
        global_obs, consumer_obs, firm_obs = (
            enc.global_observation(after),
            enc.consumer_observation(after),
            enc.firm_observation(after),
        )
    else:
        global_obs, consumer_obs, firm_obs = observations
    if outcome is None:  # at reset: stocks of the initial state, zero flows
        zero_c = torch.zeros(E, C, device=env.device)
        zero_f = torch.zeros(E, F, device=env.device)
        zero_g = torch.zeros(E, device=env.device)
        consumption, hours, employer = zero_c.unsqueeze(-1).expand(E, C, F), zero_c, zero_c.long()
        labor_income = income_tax = transfer = zero_c
        production = sales = exports = revenue = wage_bill = investment = profit = corporate_tax = zero_f
        tax_revenue = welfare = zero_g
    else:
        consumption = outcome.consumption
        labor_income, income_tax, transfer = outcome.labor_income, outcome.income_tax_paid, outcome.transfer
        production, sales, exports = outcome.production, outcome.sales, outcome.exports
        revenue, wage_bill, investment = outcome.revenue, outcome.wage_bill, outcome.investment
        profit, corporate_tax = outcome.profit, outcome.corporate_tax_paid
        tax_revenue, welfare = outcome.tax_revenue, outcome.welfare

    consumer = {
        "observation": consumer_obs,
        "action_mask": env.action_mask("consumer").expand(E, C, *env.action_mask("consumer").shape),
        "budget": after.consumer_budget,
        "consumption": consumption,
        "hours": hours,
        "employer": employer,
        "labor_income": labor_income,
        "income_tax": income_tax,
        "transfer": transfer,
    }
    firm = {
        "observation": firm_obs,
        "action_mask": env.action_mask("firm").expand(E, F, -1),
        "budget": after.firm_budget,
        "capital": after.capital,
        "inventory": after.inventory,
        "price": before.price,
        "wage": before.wage,
        "production": production,
        "sales": sales,
        "exports": exports,
        "revenue": revenue,
        "wage_bill": wage_bill,
        "investment": investment,
        "profit": profit,
        "corporate_tax": corporate_tax,
    }
    government = {
        "observation": global_obs.unsqueeze(1),
        "action_mask": env.action_mask("government").expand(E, 1, -1),
        "income_tax_rate": before.income_tax.unsqueeze(1),
        "corporate_tax_rate": before.corporate_tax.unsqueeze(1),
        "revenue": tax_revenue.unsqueeze(1),
        "welfare": welfare.unsqueeze(1),
    }
    done = (after.time >= env.config.episode_length).unsqueeze(-1)
    out = {
        "global_observation": global_obs,
        "consumer": TensorDict(consumer, batch_size=(E, C)),
        "firm": TensorDict(firm, batch_size=(E, F)),
        "government": TensorDict(government, batch_size=(E, 1)),
        "done": done,
        "terminated": done.clone(),
    }
    if outcome is not None:
        out["consumer"]["reward"] = outcome.consumer_reward.unsqueeze(-1)
        out["firm"]["reward"] = outcome.firm_reward.unsqueeze(-1)
        out["government"]["reward"] = welfare.view(E, 1, 1)
    return TensorDict(out, batch_size=(E,), device=env.device)
