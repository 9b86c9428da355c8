"""The env against TorchRL's contracts and the observation layout of spec section 4."""

from __future__ import annotations

import math

import pytest
import torch
from torchrl.envs.utils import check_env_specs

from envs.rbc.actions import consumer_head_mask
from envs.rbc.config import RBCConfig
from envs.rbc.dynamics import pareto_labor_disutility
from envs.rbc.env import CONSUMER_READOUT, FIRM_READOUT, GOVERNMENT_READOUT, RBCEnv
from envs.rbc.observations import full_observation


def sized(n_consumers, n_firms, **changes):
    return RBCConfig(n_consumers=n_consumers, n_firms=n_firms, **changes)


@pytest.mark.parametrize("open_economy", [True, False], ids=["open", "closed"])
@pytest.mark.parametrize("encoding", ["digits", "symlog"])
@pytest.mark.parametrize("sizes, num_envs", [((2, 2), 1), ((5, 3), 4), ((100, 10), 2)], ids=["2x2", "5x3", "100x10"])
def test_check_env_specs(open_economy, encoding, sizes, num_envs):
    env = RBCEnv(sized(*sizes, open_economy=open_economy, observation_encoding=encoding), num_envs=num_envs, seed=1)
    check_env_specs(env, seed=3)


def test_check_env_specs_with_restricted_masks():
    env = RBCEnv(sized(5, 3), num_envs=3, seed=0)
    mask = torch.zeros(30, dtype=torch.bool)
    mask[12] = True  # spec 2.4 at episode 0: only (price 1000, wage 22) = 5*2+2
    env.set_action_mask("firm", mask)
    gov = torch.zeros(36, dtype=torch.bool)
    gov[0] = True
    env.set_action_mask("government", gov)
    consumer = consumer_head_mask(env.config).clone()
    consumer[0, 3:] = False  # good 0: at most 2 units
    consumer[3, 0] = False  # hours: never 0
    env.set_action_mask("consumer", consumer)
    check_env_specs(env, seed=0)
    spec_sample = env.full_action_spec["consumer", "action"].rand()  # TorchRL's own sampler honours it too
    assert (spec_sample[..., 0] < 3).all() and (spec_sample[..., 3] != 0).all()


def test_observation_sizes_digits_reference_economy():
    """Spec 4.2: consumer 144 = global 133 + private 11, firm 155 = 133 + 22, government 133."""
    env = RBCEnv(RBCConfig(observation_encoding="digits"), num_envs=2)
    td = env.reset()
    assert td["global_observation"].shape == (2, 133)
    assert td["consumer", "observation"].shape == (2, 100, 11)
    assert td["firm", "observation"].shape == (2, 10, 22)
    assert td["government", "observation"].shape == (2, 1, 133)
    assert full_observation(td["global_observation"], td["consumer", "observation"]).shape == (2, 100, 144)
    assert full_observation(td["global_observation"], td["firm", "observation"]).shape == (2, 10, 155)


def test_observation_sizes_symlog_reference_economy():
    """One feature per stock and budget gives the raw spec 4.1 sizes: 43 global, 45 consumer, 56 firm."""
    env = RBCEnv(RBCConfig(observation_encoding="symlog"), num_envs=2)
    td = env.reset()
    assert td["global_observation"].shape == (2, 43)
    assert full_observation(td["global_observation"], td["consumer", "observation"]).shape == (2, 100, 45)
    assert full_observation(td["global_observation"], td["firm", "observation"]).shape == (2, 10, 56)
    assert td["government", "observation"].shape == (2, 1, 43)


def test_digits_encoding_values():
    """Nested remainders (x mod 10^(k+1)) / 10^(k+1) with floor-mod for negatives (spec 4.2)."""
    config = sized(2, 2, observation_encoding="digits", initial_consumer_budget=2345.0, initial_firm_budget=-1640.0,
                   initial_inventory=7.0)
    env = RBCEnv(config, num_envs=1)
    td = env.reset()
    consumer = td["consumer", "observation"][0, 0]
    expected = [0.5, 0.45, 0.345, 0.2345, 0.02345, 0.002345, 0.0002345, 2.345e-5, 2.345e-6, 2.345e-7]
    torch.testing.assert_close(consumer[:10], torch.tensor(expected), rtol=1e-5, atol=1e-7)
    theta = pareto_labor_disutility(config)
    torch.testing.assert_close(consumer[10], theta[0] / 0.01)  # theta / 0.01
    # -1640 floor-mod 10^k: 0, 60, 360, 8360, 98360, 999998360, ... (10^k - 1640 for k >= 4)
    firm = td["firm", "observation"][0, 0]
    expected_neg = [0.0, 0.6, 0.36, 0.836, 0.9836] + [1 - 1640 / 10 ** (k + 1) for k in range(5, 10)]
    torch.testing.assert_close(firm[:10], torch.tensor(expected_neg), rtol=1e-5, atol=1e-6)
    # firm private part after the budget: capital / 10000, alpha, one-hot id (spec 4.1)
    torch.testing.assert_close(firm[10:], torch.tensor([config.initial_capital[0] / 10000, config.alpha[0], 1.0, 0.0]))
    # global: prices/2500, wages/44, 10 digit features per stock, flags, tau, sigma, t/10
    glob = td["global_observation"][0]
    assert glob.shape == (4 + 2 * 10 + 2 + 3,)
    torch.testing.assert_close(glob[:2], torch.tensor([1000 / 2500] * 2))
    torch.testing.assert_close(glob[4:6], torch.tensor([0.7, 0.07]))  # 7 mod 10 / 10, 7 mod 100 / 100
    assert glob[-5:].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_symlog_encoding_values():
    config = sized(2, 2, observation_encoding="symlog", initial_consumer_budget=2000.0, initial_firm_budget=-1640.0)
    td = RBCEnv(config, num_envs=1).reset()
    assert td["consumer", "observation"][0, 0, 0].item() == pytest.approx(math.log1p(2000.0) / 10, rel=1e-6)
    assert td["firm", "observation"][0, 1, 0].item() == pytest.approx(-math.log1p(1640.0) / 10, rel=1e-6)


def test_readout_keys_and_shapes():
    env = RBCEnv(sized(5, 3), num_envs=4, seed=0)
    nxt = env.rand_step(env.reset())["next"]
    for key in CONSUMER_READOUT:
        expected = (4, 5, 3) if key == "consumption" else (4, 5)
        assert nxt["consumer", key].shape == expected, key
    for key in FIRM_READOUT:
        assert nxt["firm", key].shape == (4, 3), key
    for key in GOVERNMENT_READOUT:
        assert nxt["government", key].shape == (4, 1), key
    for group, n in (("consumer", 5), ("firm", 3), ("government", 1)):
        assert nxt[group, "reward"].shape == (4, n, 1)
    assert nxt["done"].shape == nxt["terminated"].shape == (4, 1)


def test_episode_ends_after_T_steps_and_rollout_continues():
    T = 10
    env = RBCEnv(sized(5, 3), num_envs=3, seed=0)
    ro = env.rollout(2 * T, break_when_any_done=False)
    assert ro.batch_size == (3, 2 * T)
    done = ro["next", "done"].squeeze(-1)
    assert done[:, T - 1].all() and done[:, 2 * T - 1].all()
    assert done.sum().item() == 3 * 2
    time = ro["global_observation"][..., -1] * T  # t / 10 at the root = state the action was taken in
    expected_t = torch.tensor([float(k % T) for k in range(2 * T)])
    torch.testing.assert_close(time, expected_t.expand(3, -1))
    # the second episode starts from the same initial state as the first
    torch.testing.assert_close(ro["global_observation"][:, T], ro["global_observation"][:, 0])
    torch.testing.assert_close(ro["consumer", "observation"][:, T], ro["consumer", "observation"][:, 0])
    torch.testing.assert_close(ro["firm", "observation"][:, T], ro["firm", "observation"][:, 0])


def test_partial_reset_resets_only_selected_economies():
    env = RBCEnv(sized(5, 3), num_envs=4, seed=0)
    td = env.reset()
    initial_global = td["global_observation"].clone()
    initial_consumer = td["consumer", "observation"].clone()
    for _ in range(3):
        td = env.step_mdp(env.rand_step(td))
    before = td.clone()
    assert not torch.equal(before["global_observation"], initial_global)
    mask = torch.tensor([[True], [False], [True], [False]])
    request = before.clone()
    request["_reset"] = mask  # as step_and_maybe_reset passes it: the current data plus the mask
    out = env.reset(request)
    initial = {"global_observation": initial_global, ("consumer", "observation"): initial_consumer}
    for key in ("global_observation", ("consumer", "observation"), ("firm", "observation")):
        new, old = out[key], before[key]
        torch.testing.assert_close(new[1], old[1])  # untouched economies keep their state
        torch.testing.assert_close(new[3], old[3])
        if key in initial:  # reset economies are back at the start
            torch.testing.assert_close(new[0], initial[key][0])
            torch.testing.assert_close(new[2], initial[key][2])
    state = env.state
    assert state.time.tolist() == [0.0, 3.0, 0.0, 3.0]
    assert state.consumer_budget[0].eq(2000).all() and state.consumer_budget[2].eq(2000).all()
    assert not state.consumer_budget[1].eq(2000).all()


def test_same_seed_same_rollout_different_seed_differs():
    def roll(seed):
        env = RBCEnv(sized(5, 3), num_envs=3, seed=seed)
        return env.rollout(12, break_when_any_done=False)

    a, b, c = roll(7), roll(7), roll(8)
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    for key in a.keys(True, True):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["consumer", "action"], c["consumer", "action"])
    assert not torch.equal(a["next", "consumer", "reward"], c["next", "consumer", "reward"])


def test_agent_names_and_count_follow_vmas():
    """VMAS: `agent_names` lists every agent of one economy, `n_agents` counts them, `group_map` partitions them."""
    env = RBCEnv(sized(5, 3), num_envs=2)
    assert env.n_agents == 5 + 3 + 1
    assert env.agent_names == [f"consumer_{i}" for i in range(5)] + [f"firm_{i}" for i in range(3)] + ["government_0"]
    assert [name for names in env.group_map.values() for name in names] == env.agent_names
    for group, names in env.group_map.items():  # each group's names match its spec's agent dim
        assert len(names) == env.full_action_spec[group].shape[-1]


def tensors_reachable(obj, seen=None) -> list[torch.Tensor]:
    """Every tensor an object holds, through attributes, dataclasses, tuples, lists and dicts (specs aside)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in tensors_reachable(v, seen)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in tensors_reachable(v, seen)]
    if type(obj).__module__.startswith("envs."):
        return [t for v in vars(obj).values() for t in tensors_reachable(v, seen)]
    return []


def test_to_moves_every_tensor_the_env_holds():
    """CPU -> meta: nothing stays behind (state, parameters, encoder tables, masks, specs)."""
    env = RBCEnv(sized(5, 3), num_envs=2, seed=0)
    held = [t for value in vars(env).values() for t in tensors_reachable(value)]
    assert len(held) > 20 and all(t.device.type == "cpu" for t in held)
    assert env.to("cpu") is env
    assert env.to("meta") is env and env.device == torch.device("meta")
    for name, value in vars(env).items():
        for tensor in tensors_reachable(value):
            assert tensor.device.type == "meta", f"{name} keeps a tensor on {tensor.device}"
    for spec in (env.full_observation_spec, env.full_action_spec, env.full_reward_spec, env.full_done_spec):
        assert spec.device == torch.device("meta")
    with pytest.raises(TypeError, match="float32"):
        env.to(torch.float64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to move to")
def test_env_moved_to_cuda_steps_as_one_built_there_with_its_masks():
    config = sized(5, 3)
    firm = torch.zeros(30, dtype=torch.bool)
    firm[[4, 12]] = True
    moved, built = RBCEnv(config, num_envs=2).to("cuda"), RBCEnv(config, num_envs=2, device="cuda")
    for env in (moved, built):
        env.set_action_mask("firm", firm)
    assert moved.full_action_spec["firm", "action"].mask.device.type == "cuda"  # spec.to() alone drops it
    torch.manual_seed(0)
    action = built.rand_action(built.reset())
    out_moved, out_built = moved.step(action.clone()), built.step(action.clone())
    for key in out_built.keys(True, True):
        assert torch.equal(out_moved[key], out_built[key]), key
