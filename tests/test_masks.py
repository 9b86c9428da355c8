"""Action masks (spec 2.4): validation, sampling only allowed actions, refusing masked actions."""

from __future__ import annotations

import pytest
import torch

from envs.rbc.actions import (
    consumer_head_mask,
    firm_mask_from_ranges,
    fixed_tax_action,
    government_mask_from_caps,
)
from envs.rbc.config import RBCConfig
from envs.rbc.env import RBCEnv


@pytest.fixture
def env():
    return RBCEnv(RBCConfig(n_consumers=6, n_firms=3), num_envs=5, seed=0)


def test_spec_masks_at_curriculum_milestones():
    config = RBCConfig()
    # episode 0: firms may only play (price 1000, wage 22) = index 5*2 + 2 = 12
    start = firm_mask_from_ranges(config, (1000, 1000), (22, 22))
    assert start.nonzero().flatten().tolist() == [12]
    # spec 2.4 table at e = 15000 of E_f = 30000: prices 500..1750 -> {500, 1000, 1500}; wages 11..33
    half = firm_mask_from_ranges(config, (1000 - 1000 * 0.5, 1000 + 1500 * 0.5), (22 - 11, 22 + 11))
    allowed = {(i // 5, i % 5) for i in half.nonzero().flatten().tolist()}
    assert allowed == {(p, w) for p in (1, 2, 3) for w in (1, 2, 3)}
    # government before its anneal: only (0, 0); with cap 0.4 both rates in {0, 0.2, 0.4}
    assert government_mask_from_caps(config, 0.0, 0.0).nonzero().flatten().tolist() == [0]
    capped = government_mask_from_caps(config, 0.4, 0.4)
    assert {(i // 6, i % 6) for i in capped.nonzero().flatten().tolist()} == {(a, b) for a in range(3) for b in range(3)}
    # spec 9.1 fixed-tax baselines: tau = sigma = X at indices 7, 14, 21, 28
    assert [fixed_tax_action(config, x, x) for x in (0.2, 0.4, 0.6, 0.8)] == [7, 14, 21, 28]
    with pytest.raises(ValueError):
        fixed_tax_action(config, 0.3, 0.3)


def test_consumer_head_mask_padding():
    mask = consumer_head_mask(RBCConfig())
    assert mask.shape == (12, 11)
    assert mask[:10].all()
    assert mask[10].tolist() == [True] * 5 + [False] * 6  # hours: 5 choices
    assert mask[11].tolist() == [True] * 10 + [False]  # employer: 10 firms


@pytest.mark.parametrize(
    "group, bad",
    [
        ("firm", torch.ones(29, dtype=torch.bool)),  # wrong length
        ("firm", torch.ones(30, dtype=torch.int64)),  # wrong dtype
        ("firm", torch.ones(5, 30, dtype=torch.bool)),  # per-agent shape is not accepted
        ("firm", torch.zeros(30, dtype=torch.bool)),  # nothing allowed
        ("government", torch.zeros(36, dtype=torch.bool)),
        ("government", torch.ones(30, dtype=torch.bool)),
        ("consumer", torch.ones(5, 11, dtype=torch.bool)),  # heads are 3 goods + hours + employer = 5, but 11 wide
        ("consumer", torch.ones(5, 3, dtype=torch.float32)),
    ],
)
def test_set_action_mask_rejects_bad_masks(env, group, bad):
    before = env.action_mask(group).clone()
    with pytest.raises(ValueError):
        env.set_action_mask(group, bad)
    assert torch.equal(env.action_mask(group), before)


def test_consumer_mask_padding_and_empty_head_rejected(env):
    good = consumer_head_mask(env.config)
    assert good.shape == (5, 11)
    padded = good.clone()
    padded[3, 7] = True  # hours head has 5 choices; entry 7 is padding
    with pytest.raises(ValueError, match="padding"):
        env.set_action_mask("consumer", padded)
    empty = good.clone()
    empty[4] = False  # no employer allowed
    with pytest.raises(ValueError):
        env.set_action_mask("consumer", empty)
    with pytest.raises(ValueError):
        env.set_action_mask("planner", good)


def test_rand_action_samples_only_allowed(env):
    torch.manual_seed(0)
    firm = torch.zeros(30, dtype=torch.bool)
    firm[[3, 17, 29]] = True
    gov = torch.zeros(36, dtype=torch.bool)
    gov[[0, 35]] = True
    consumer = consumer_head_mask(env.config).clone()
    consumer[0, :10] = False  # good 0: only 10 units
    consumer[3, [0, 2]] = False  # hours: never 0 or 520
    consumer[4, 1] = False  # never work at firm 1
    env.set_action_mask("firm", firm)
    env.set_action_mask("government", gov)
    env.set_action_mask("consumer", consumer)
    seen_firm, seen_gov = set(), set()
    for _ in range(200):
        td = env.rand_action()
        f, g, c = td["firm", "action"], td["government", "action"], td["consumer", "action"]
        assert firm[f].all() and gov[g].all()
        assert consumer[torch.arange(5), c].all()
        seen_firm |= set(f.unique().tolist())
        seen_gov |= set(g.unique().tolist())
    assert seen_firm == {3, 17, 29} and seen_gov == {0, 35}  # every allowed action gets drawn
    # the spec-based sampler agrees (used by TorchRL's own tools)
    spec_sample = env.full_action_spec["firm", "action"].rand()
    assert firm[spec_sample].all()


def test_stepping_a_masked_action_raises(env):
    td = env.reset()
    firm = torch.ones(30, dtype=torch.bool)
    firm[0] = False
    env.set_action_mask("firm", firm)
    action = env.rand_action(td.clone())
    action["firm", "action"][0, 0] = 0
    with pytest.raises(ValueError):
        env.step(action)

    gov = torch.ones(36, dtype=torch.bool)
    gov[35] = False
    env.set_action_mask("government", gov)
    action = env.rand_action(td.clone())
    action["government", "action"][2, 0] = 35
    with pytest.raises(ValueError):
        env.step(action)

    consumer = consumer_head_mask(env.config).clone()
    consumer[3, 4] = False  # no full-time work
    env.set_action_mask("consumer", consumer)
    action = env.rand_action(td.clone())
    action["consumer", "action"][1, 2, 3] = 4
    with pytest.raises(ValueError):
        env.step(action)
    # an allowed action still steps
    env.step(env.rand_action(td.clone()))


def test_mask_is_observed_from_the_next_step(env):
    td = env.reset()
    firm = torch.zeros(30, dtype=torch.bool)
    firm[12] = True
    env.set_action_mask("firm", firm)
    nxt = env.rand_step(td)["next"]
    assert torch.equal(nxt["firm", "action_mask"], firm.expand(5, 3, 30))
    assert nxt["consumer", "action_mask"].shape == (5, 6, 5, 11)
    assert env.rand_action()["firm", "action"].eq(12).all()


@pytest.mark.parametrize("restricted", [False, True], ids=["default-mask", "curriculum-mask"])
def test_rand_action_is_uniform_over_allowed_choices(restricted):
    env = RBCEnv(RBCConfig(n_consumers=50, n_firms=4), num_envs=200, seed=0)
    firm = torch.ones(30, dtype=torch.bool)
    consumer = consumer_head_mask(env.config).clone()
    if restricted:
        firm[::3] = False
        consumer[env.config.n_firms, 1] = False  # hours: 260 never
        env.set_action_mask("firm", firm)
        env.set_action_mask("consumer", consumer)
    draws = [env.rand_action() for _ in range(5)]
    firm_actions = torch.cat([d["firm", "action"].reshape(-1) for d in draws])  # 4000 draws
    counts = torch.bincount(firm_actions, minlength=30).double()
    expected = len(firm_actions) / firm.sum()
    assert (counts[~firm] == 0).all()
    assert ((counts[firm] - expected).abs() < 5 * expected.sqrt()).all()  # 5 sigma of a binomial count
    hours = torch.cat([d["consumer", "action"][..., env.config.n_firms].reshape(-1) for d in draws])  # 50000
    counts = torch.bincount(hours, minlength=5).double()
    allowed = consumer[env.config.n_firms, :5]
    expected = len(hours) / allowed.sum()
    assert (counts[~allowed] == 0).all()
    assert ((counts[allowed] - expected).abs() < 5 * expected.sqrt()).all()
