"""The curriculum (spec 2.4 and 6) with the reference schedule: masks, anneals, entropy, stages."""

from __future__ import annotations

import math

import pytest
import torch

from envs.rbc.config import RBCConfig
from pipeline.config import CurriculumConfig
from pipeline.learning.curriculum import Curriculum
from pipeline.learning.session import Session, Variant

from pipeline_support import small_config

PRICES = [0, 500, 1000, 1500, 2000, 2500]
WAGES = [0, 11, 22, 33, 44]


@pytest.fixture(scope="module")
def reference():
    """The paper's schedule: E_f = 30000, G1 = E_g = 30000, L = 10000, stages 30k/15k/15k/140k."""
    return Curriculum(CurriculumConfig(), RBCConfig())


def allowed_pairs(mask: torch.Tensor) -> set[tuple[int, int]]:
    # spec 2.2: index = 5 * price_index + wage_index
    return {(PRICES[i // 5], WAGES[i % 5]) for i in mask.nonzero().flatten().tolist()}


def opened(reference, episode):
    pairs = allowed_pairs(reference.firm_mask(episode))
    return {p for p, _ in pairs}, {w for _, w in pairs}


def test_firm_mask_starts_at_the_center_action(reference):
    assert allowed_pairs(reference.firm_mask(0)) == {(1000, 22)}
    assert reference.plan(0).firm_actions_allowed == 1


@pytest.mark.parametrize(
    "value, kind, first_episode",
    [
        (1500, "price", 10000),
        (500, "price", 15000),
        (2000, "price", 20000),
        (0, "price", 30000),
        (2500, "price", 30000),
        (11, "wage", 15000),
        (33, "wage", 15000),
        (0, "wage", 30000),
        (44, "wage", 30000),
    ],
)
def test_firm_mask_opens_each_value_at_the_spec_episode(reference, value, kind, first_episode):
    index = 0 if kind == "price" else 1
    assert value not in opened(reference, first_episode - 1)[index]
    assert value in opened(reference, first_episode)[index]
    assert value in opened(reference, first_episode + 1)[index]


def test_firm_mask_is_a_product_of_price_and_wage_ranges(reference):
    for episode in (0, 9999, 10000, 14999, 15000, 22000, 29999, 30000, 45000):
        prices, wages = opened(reference, episode)
        assert allowed_pairs(reference.firm_mask(episode)) == {(p, w) for p in prices for w in wages}
    assert reference.firm_mask(30000).all() and reference.firm_mask(100000).all()


def test_tax_caps_open_one_step_every_6000_episodes(reference):
    for k in range(6):  # caps 0, 0.2, ..., 1.0
        at = 30000 + 6000 * k
        mask = reference.plan(at).government_mask
        rates = {(i // 6, i % 6) for i in mask.nonzero().flatten().tolist()}
        assert rates == {(a, b) for a in range(k + 1) for b in range(k + 1)}, at
        if k > 0:
            before = reference.plan(at - 1).government_mask
            assert int(before.sum()) == k * k, at
    assert reference.plan(0).government_mask.nonzero().flatten().tolist() == [0]
    assert reference.plan(29999).max_tax == 0.0
    assert reference.plan(45000).max_tax == pytest.approx(0.5)
    assert reference.plan(200000).government_mask.all()


@pytest.mark.parametrize("episode", [0, 1, 5000, 10000, 30000, 60000, 199999])
def test_labor_disutility_anneal(reference, episode):
    assert reference.plan(episode).labor_disutility_anneal == pytest.approx(1 - math.exp(-episode / 10000), abs=1e-12)


@pytest.mark.parametrize(
    "group, start", [("consumer", 0), ("firm", 30000), ("government", 60000)]
)
def test_entropy_anneals_from_each_types_first_training_episode(reference, group, start):
    for elapsed in (0, 1, 5000, 10000, 23025, 23026, 50000):
        expected = 0.5 * max(math.exp(-elapsed / 10000), 0.1)
        assert reference.plan(start + elapsed).entropy[group] == pytest.approx(expected, rel=1e-12)
    assert reference.plan(start + 100000).entropy[group] == pytest.approx(0.05)  # the floor


def test_stages_decide_who_trains(reference):
    assert reference.bounds == {
        "consumers": (0, 30000), "firms": (30000, 45000), "taxes": (45000, 60000), "government": (60000, 200000),
    }
    expected = {
        0: ("consumer",), 29999: ("consumer",),
        30000: ("consumer", "firm"), 44999: ("consumer", "firm"), 45000: ("consumer", "firm"),
        59999: ("consumer", "firm"),
        60000: ("consumer", "firm", "government"), 199999: ("consumer", "firm", "government"),
    }
    for episode, groups in expected.items():
        assert reference.plan(episode).train == groups, episode
    stages = {0: "consumers", 29999: "consumers", 30000: "firms", 44999: "firms", 45000: "taxes", 59999: "taxes",
              60000: "government", 199999: "government"}
    for episode, name in stages.items():
        assert reference.stage_at(episode) == name, episode


def test_fixed_tax_variant_never_trains_the_government_and_opens_all_taxes():
    fixed = Curriculum(CurriculumConfig(), RBCConfig(), fixed_government=True)
    for episode in (0, 30000, 45000, 60000, 150000):
        plan = fixed.plan(episode)
        assert "government" not in plan.train
        assert plan.government_mask.all() and plan.max_tax == 1.0
    assert fixed.plan(60000).train == ("consumer", "firm")


def test_corporate_cap_masks_higher_corporate_rates_only():
    """A capped learned government: income rates open as scheduled, corporate rates never above the cap."""
    capped = Curriculum(CurriculumConfig(), RBCConfig(), max_corporate_tax=0.5)
    grid = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    for episode, income_cap in ((0, 0.0), (42000, 0.4), (60000, 1.0), (150000, 1.0)):
        allowed = capped.plan(episode).government_mask.nonzero().flatten().tolist()
        pairs = {(grid[i // 6], grid[i % 6]) for i in allowed}  # spec 2.3: index = 6 * income + corporate
        assert pairs == {(t, s) for t in grid for s in grid if t <= income_cap and s <= min(income_cap, 0.5)}
    fixed = Curriculum(CurriculumConfig(), RBCConfig(), fixed_government=True, max_corporate_tax=0.5)
    assert fixed.plan(60000).government_mask.all()  # a fixed rate must stay playable


def test_fixed_tax_session_plays_the_fixed_rate_and_keeps_its_government():
    config = small_config()
    curriculum = Curriculum(config.curriculum, config.economy, fixed_government=True)
    session = Session(config, Variant(fixed_tax=0.4))
    before = {k: v.clone() for k, v in session.policies["government"].network.state_dict().items()}
    session.episode = 19  # the government stage of the small pipeline
    data, metrics = session.run_episode(curriculum.plan(19))
    rates = data["next", "government", "income_tax_rate"][:, 1:]
    assert torch.allclose(rates, torch.tensor(0.4))
    assert torch.allclose(data["next", "government", "corporate_tax_rate"][:, 1:], torch.tensor(0.4))
    assert "loss/government/objective" not in metrics and "loss/firm/objective" in metrics
    after = session.policies["government"].network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_corporate_cap_survives_the_checkpoint_and_reaches_evaluation():
    from pipeline.analysis.evaluate import final_plan

    variant = Variant(welfare="consumer_only", max_corporate_tax=0.4)
    assert Variant(**variant.as_dict()) == variant
    assert "max_corporate_tax" not in Variant().as_dict()  # checkpoints without a cap read as before
    config = small_config()
    session = Session(config, variant)
    session.episode = config.curriculum.total_episodes
    grid = config.economy.corporate_tax_grid
    n = len(grid)
    allowed = final_plan(session, config).government_mask.nonzero().flatten().tolist()
    assert allowed and max(grid[i % n] for i in allowed) <= 0.4
