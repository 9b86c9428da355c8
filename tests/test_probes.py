"""The consumer-response probe: it reads a policy's answer to one firm's posted terms."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.analysis.probes import consumer_responses
from pipeline.analysis.report import ignored_firms
from pipeline.learning.policies import ActorCriticNetwork
from pipeline.learning.session import Session

from pipeline_support import small_config


class WageReader(nn.Module):
    """Employer logits that follow each firm's posted wage, except one firm the consumers ignore."""

    def __init__(self, base: ActorCriticNetwork, n_firms: int, ignored: int):
        super().__init__()
        self.base, self.n_firms, self.ignored = base, n_firms, ignored

    def forward(self, global_obs, private_obs, mask):
        logits, value = self.base(global_obs, private_obs, mask)
        F = self.n_firms
        employer = 10.0 * global_obs[..., F:2 * F].unsqueeze(-2).expand(*logits.shape[:-2], F).clone()
        employer[..., self.ignored] = 0.0
        logits = logits.clone()
        logits[..., F + 1, :F] = employer
        return logits, value


def test_the_probe_finds_the_firm_whose_wage_consumers_ignore():
    torch.manual_seed(0)
    session = Session(small_config(economy={"n_consumers": 5, "n_firms": 3}))
    session.policies["consumer"].network = WageReader(session.policies["consumer"].network, 3, ignored=1)
    data = session.collect()
    response = consumer_responses(session, data)
    assert response["wage_grid"] == session.economy.wage_grid
    employer = torch.tensor(response["employer_probability"])  # (firms, wages)
    demand = torch.tensor(response["demand_units"])  # (firms, prices)
    assert employer.shape == (3, len(session.economy.wage_grid))
    assert demand.shape == (3, len(session.economy.price_grid))
    assert ((employer >= 0) & (employer <= 1)).all()
    assert (demand >= 0).all() and (demand <= max(session.economy.consumption_grid)).all()
    assert (employer[[0, 2]].diff(dim=-1) > 0).all()  # a higher wage draws more consumers
    assert ignored_firms(response) == [1]


def test_a_posted_term_changes_only_that_firms_entry():
    session = Session(small_config(economy={"n_consumers": 5, "n_firms": 3}))
    encoder = session.env.encoder
    glob = session.collect()["global_observation"]
    moved = encoder.with_firm_terms(glob, 2, price=500.0, wage=11.0)
    changed = (moved != glob).any(dim=tuple(range(glob.dim() - 1)))
    assert set(changed.nonzero().flatten().tolist()) <= {2, 5}  # firm 2's price, then its wage (3 firms)
    assert torch.allclose(moved[..., 2], torch.tensor(500.0 / encoder.price_scale))
    assert torch.allclose(moved[..., 5], torch.tensor(11.0 / encoder.wage_scale))
    assert ignored_firms(None) is None
