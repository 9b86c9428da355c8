"""Probes of a trained consumer policy: how it answers one firm's posted terms, everything else as observed.

Rewards and correlations cannot tell apart a firm that consumers avoid for its terms from one they
avoid for its index. Asking the policy what it would do if firm i alone posted each wage (or price) of
the grid can: a policy that reads terms answers every firm alike; one that has learned to ignore a firm
answers that firm with a flat line (docs/results.md, section 2.1).
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase

from ..learning.session import Session


@torch.no_grad()
def consumer_responses(session: Session, data: TensorDictBase) -> dict:
    """Per firm and grid value: the mean probability that a consumer picks the firm as employer when it
    alone posts that wage, and the mean units of its good a consumer asks for when it alone posts that
    price, over the consumers and steps 1..T-1 of the given rollout."""
    economy, encoder = session.economy, session.env.encoder
    network = session.policies["consumer"].network
    n_firms = economy.n_firms
    employer_head, n_choices = n_firms + 1, len(economy.consumption_grid)
    units = torch.tensor(economy.consumption_grid, dtype=torch.float32)

    def flat(key, tail: int):
        value = data.get(key)[:, 1:]
        return value.reshape(-1, *value.shape[value.dim() - tail:])

    global_obs = flat("global_observation", 1)
    private, mask = flat(("consumer", "observation"), 2), flat(("consumer", "action_mask"), 3)
    employer, demand = [], []
    for firm in range(n_firms):
        by_wage = []
        for wage in economy.wage_grid:
            logits, _ = network(encoder.with_firm_terms(global_obs, firm, wage=wage), private, mask)
            by_wage.append(float(logits[..., employer_head, :n_firms].softmax(-1)[..., firm].mean()))
        by_price = []
        for price in economy.price_grid:
            logits, _ = network(encoder.with_firm_terms(global_obs, firm, price=price), private, mask)
            probabilities = logits[..., firm, :n_choices].softmax(-1)
            by_price.append(float((probabilities * units).sum(-1).mean()))
        employer.append(by_wage)
        demand.append(by_price)
    return {
        "wage_grid": list(economy.wage_grid),
        "employer_probability": employer,
        "price_grid": list(economy.price_grid),
        "demand_units": demand,
    }
