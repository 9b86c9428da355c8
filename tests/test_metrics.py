"""Intervals and per-economy samples against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from envs.rbc.config import RBCConfig
from pipeline.learning.metrics import economy_samples, mean_ci95, t975


def test_mean_ci95_is_the_student_t_interval_computed_by_hand():
    # samples 1, 2, 4: mean 7/3, sample variance ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3, t(0.975, 2) = 4.302653
    result = mean_ci95([1.0, 2.0, 4.0])
    half = 4.302653 * math.sqrt(7 / 3) / math.sqrt(3)
    assert result["n"] == 3 and result["mean"] == pytest.approx(7 / 3)
    assert result["ci95"] == pytest.approx([7 / 3 - half, 7 / 3 + half], rel=1e-6)
    assert math.isnan(mean_ci95([5.0])["ci95"][0])


@pytest.mark.parametrize("dof, table", [(1, 12.7062), (5, 2.5706), (30, 2.0423), (40, 2.0211), (60, 2.0003),
                                        (120, 1.9799), (1000, 1.9623)])
def test_t_quantiles_match_the_published_table(dof, table):
    assert t975(dof) == pytest.approx(table, abs=2e-4)


def test_welfare_sums_rewards_over_steps_and_agents_by_hand():
    """Two economies, two steps, two consumers, one firm, firm weight w: welfare = sum of consumer rewards +
    w x sum of firm rewards; consumer-only welfare leaves the firms out; rewards per agent are the type's mean
    of episode sums."""
    economy = RBCConfig(n_consumers=2, n_firms=1)
    w = economy.firm_welfare_weight
    consumer = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.5, -1.0], [0.0, 2.5]]])  # (E, T, C)
    firm = torch.tensor([[[10.0], [20.0]], [[-5.0], [5.0]]])  # (E, T, F)
    E, T = 2, 2
    zeros_c, zeros_f = torch.zeros(E, T, 2), torch.zeros(E, T, 1)
    data = TensorDict({
        "consumer": {"action": torch.zeros(E, T, 2, 3, dtype=torch.long)},
        "next": {
            "consumer": {"reward": consumer.unsqueeze(-1), "hours": zeros_c, "budget": zeros_c,
                         "consumption": torch.zeros(E, T, 2, 1), "employer": torch.zeros(E, T, 2, dtype=torch.long)},
            "firm": {"reward": firm.unsqueeze(-1), "sales": zeros_f, "exports": zeros_f, "price": zeros_f + 1,
                     "wage": zeros_f, "production": zeros_f, "budget": zeros_f},
            "government": {"reward": torch.zeros(E, T, 1, 1), "income_tax_rate": torch.zeros(E, T, 1),
                           "corporate_tax_rate": torch.zeros(E, T, 1)},
        },
    }, batch_size=(E, T))
    samples = economy_samples(data, economy)
    assert samples["welfare/consumer_only"].tolist() == [10.0, 2.0]
    assert samples["welfare/total"].tolist() == pytest.approx([10.0 + w * 30.0, 2.0 + w * 0.0])
    assert samples["reward/consumer"].tolist() == [5.0, 1.0]  # (1+3 + 2+4)/2, (0.5+0 + -1+2.5)/2
    assert samples["reward/firm"].tolist() == [30.0, 0.0]
