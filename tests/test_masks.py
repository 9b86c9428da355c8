"""Action masks (spec 2.4): validation, sampling only allowed actions, refusing masked and out-of-range
actions, the consumers' two mask layouts, and masks through TorchRL wrappers."""

from __future__ import annotations

import pytest
import torch
from torchrl.collectors import Collector
from torchrl.data import MultiCategorical
from torchrl.envs import SerialEnv, TransformedEnv
from torchrl.envs.utils import RandomPolicy

from envs.rbc import action_mask_transform
from envs.rbc.actions import (
    consumer_head_mask,
    consumer_mask_to_flat,
    consumer_mask_to_padded,
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


# ---------------------------------------------------------------------------------------------- layouts
def test_flat_layout_is_torchrls_multicategorical_layout():
    """The flat mask, read by TorchRL's own MultiCategorical sampler, allows exactly what the padded mask allows."""
    config = RBCConfig(n_consumers=6, n_firms=3)
    padded = consumer_head_mask(config).clone()
    padded[0, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]] = False  # good 0: only 5 units
    padded[3, 0] = padded[3, 4] = False  # hours: neither 0 nor the most
    padded[4, 1] = False  # never firm 1
    flat = consumer_mask_to_flat(padded, config)
    assert flat.shape == (sum(config.consumer_head_sizes),) == (11 * 3 + 5 + 3,)
    assert torch.equal(consumer_mask_to_padded(flat, config), padded)
    spec = MultiCategorical(nvec=torch.tensor(config.consumer_head_sizes), shape=(2000, 5), mask=flat)
    draws = spec.rand()
    for head in range(5):
        allowed = padded[head].nonzero().flatten()
        assert set(draws[:, head].unique().tolist()) == set(allowed.tolist()), head


def test_converters_keep_leading_dims_and_refuse_wrong_shapes():
    config = RBCConfig(n_consumers=6, n_firms=3)
    padded = torch.rand(4, 6, 5, 11) > 0.5
    padded &= consumer_head_mask(config)
    flat = consumer_mask_to_flat(padded, config)
    assert flat.shape == (4, 6, 41) and torch.equal(consumer_mask_to_padded(flat, config), padded)
    with pytest.raises(ValueError, match=r"end in shape \(5, 11\)"):
        consumer_mask_to_flat(torch.ones(5, 10, dtype=torch.bool), config)
    with pytest.raises(ValueError, match="end in 41 entries"):
        consumer_mask_to_padded(torch.ones(40, dtype=torch.bool), config)


# ---------------------------------------------------------------------------------------------- range
@pytest.mark.parametrize(
    "group, where, value, expected",
    [
        ("firm", (2, 1), 30, "firm action out of range in economy 2, agent 1 (firm_1): got 30; allowed: 0..29 (30 choices)"),
        ("firm", (0, 0), -1, "firm action out of range in economy 0, agent 0 (firm_0): got -1; allowed: 0..29"),
        ("government", (4, 0), 36, "government action out of range in economy 4, agent 0 (government_0): got 36; "
                                   "allowed: 0..35 (36 choices)"),
        # head 3 is hours, 5 choices: 7 fits the padded width (11) but not the head
        ("consumer", (1, 4, 3), 7, "consumer action out of range in economy 1, agent 4 (consumer_4), head 3: got 7; "
                                   "allowed: 0..4 (5 choices)"),
        ("consumer", (0, 5, 4), 3, "head 4: got 3; allowed: 0..2 (3 choices)"),  # employer: 3 firms
    ],
)
def test_an_action_out_of_range_names_group_agent_and_range(env, group, where, value, expected):
    action = env.rand_action(env.reset())
    action[group, "action"][where] = value
    with pytest.raises(ValueError) as info:
        env.step(action)
    assert expected in str(info.value)


# ---------------------------------------------------------------------------------------------- wrappers
def masked_firms_and_consumers(env_or_wrapper, config):
    firm = torch.zeros(30, dtype=torch.bool)
    firm[[4, 12, 13]] = True
    consumer = consumer_head_mask(config).clone()
    consumer[0, 3:] = False  # good 0: at most 2 units
    env_or_wrapper.set_action_mask("firm", firm)
    env_or_wrapper.set_action_mask("consumer", consumer)
    return firm, consumer


def sample_three_ways(wrapped):
    """Actions of a random rollout, of TorchRL's RandomPolicy and of a policy-less Collector."""
    return [
        wrapped.rollout(3, break_when_any_done=False),
        wrapped.rollout(3, RandomPolicy(wrapped.full_action_spec), break_when_any_done=False),
        next(iter(Collector(wrapped, None, frames_per_batch=2 * wrapped.batch_size.numel(), total_frames=-1))),
    ]


def test_masks_set_on_a_used_transformed_env_hold_with_the_mask_transform():
    config = RBCConfig(n_consumers=6, n_firms=3)
    wrapped = TransformedEnv(RBCEnv(config, num_envs=4, seed=0), action_mask_transform(config))
    wrapped.rollout(2)  # the wrapper now holds its own copy of the action spec
    firm, consumer = masked_firms_and_consumers(wrapped, config)
    for data in sample_three_ways(wrapped):
        assert firm[data["firm", "action"]].all()
        assert (data["consumer", "action"][..., 0] <= 2).all()


def test_masks_hold_through_serial_env_with_the_mask_transform():
    config = RBCConfig(n_consumers=6, n_firms=3)
    wrapped = TransformedEnv(SerialEnv(2, lambda: RBCEnv(config, num_envs=2, seed=0)), action_mask_transform(config))
    wrapped.reset()  # SerialEnv starts its environments at the first reset; set masks after it
    firm, _ = masked_firms_and_consumers(wrapped, config)
    for data in sample_three_ways(wrapped):
        assert data["firm", "action"].shape[:2] == (2, 2)
        assert firm[data["firm", "action"]].all()
        assert (data["consumer", "action"][..., 0] <= 2).all()


def test_without_the_transform_a_wrapper_is_stopped_with_the_remedy():
    config = RBCConfig(n_consumers=6, n_firms=3)
    serial = SerialEnv(2, lambda: RBCEnv(config, num_envs=2, seed=0))
    serial.reset()
    masked_firms_and_consumers(serial, config)
    with pytest.raises(ValueError, match="needs envs.rbc.action_mask_transform appended"):
        serial.rollout(3, break_when_any_done=False)
