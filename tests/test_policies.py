"""Per-type actor-critics (spec 7.2): valid actions, masks in collection and in the loss, the split
first layer, one network pass per loss call, and user network factories."""

from __future__ import annotations

import platform
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from envs.rbc.config import ConfigError, RBCConfig
from envs.rbc.env import RBCEnv
from envs.rbc.observations import full_observation
from pipeline.config import ExperimentConfig
from pipeline.learning.policies import ActorCriticNetwork, build_policies, group_layouts, load_factory
from pipeline.learning.session import Session

from pipeline_support import single_stage, small_config

FULL_FIRMS = RBCConfig(n_consumers=3, n_firms=10)  # 10 firms: the consumer has the spec's 12 heads


def test_consumer_heads_have_the_spec_layout_and_produce_valid_actions():
    env = RBCEnv(FULL_FIRMS, num_envs=3, seed=0)
    layout = group_layouts(env)["consumer"]
    assert layout.logits_shape == (12, 11)
    policy = build_policies(env)["consumer"]
    td = env.reset()
    policy.actor(td)
    dist = policy.actor.get_dist(td)
    logits = dist.logits  # normalized log-probabilities, (E, C, 12, 11)
    probs = logits.exp()
    assert torch.all(probs[..., :10, :].sum(-1) > 0.999)  # goods: 11 choices each
    assert torch.all(probs[..., 10, 5:] == 0)  # hours: 5 choices
    assert torch.all(probs[..., 11, 10:] == 0)  # employer: 10 firms
    draws = dist.sample((2000,))
    assert int(draws[..., :10].max()) <= 10
    assert int(draws[..., 10].max()) <= 4 and int(draws[..., 11].max()) <= 9
    # every valid choice of the short heads does get sampled by an untrained policy
    assert set(draws[..., 10].unique().tolist()) == set(range(5))
    assert set(draws[..., 11].unique().tolist()) == set(range(10))
    # the env accepts a whole episode of the joint policy's actions (it raises on masked ones)
    session = Session(ExperimentConfig.from_dict({"economy": FULL_FIRMS.to_dict(), "training": {"num_envs": 3},
                                                  "tracking": {"enabled": False}}))
    data = session.collect()
    action = data["consumer", "action"]
    assert action.shape == (3, FULL_FIRMS.episode_length, 3, 12)
    assert int(action[..., 10].max()) <= 4 and int(action[..., 11].max()) <= 9


def test_firm_and_tax_masks_apply_in_collection_and_in_the_loss():
    config = small_config(curriculum=single_stage("all", 5, ["consumer", "firm", "government"]))
    session = Session(config)
    firm_allowed = torch.zeros(30, dtype=torch.bool)
    firm_allowed[[7, 21]] = True
    tax_allowed = torch.zeros(36, dtype=torch.bool)
    tax_allowed[[0, 1, 6]] = True
    session.env.set_action_mask("firm", firm_allowed)
    session.env.set_action_mask("government", tax_allowed)
    consumer_allowed = session.env.action_mask("consumer").clone()
    consumer_allowed[2, 0] = False  # consumers may not choose zero hours (head 2 of 5/2 economy)
    session.env.set_action_mask("consumer", consumer_allowed)
    data = session.collect()
    assert set(data["firm", "action"].unique().tolist()) <= {7, 21}
    assert set(data["government", "action"].unique().tolist()) <= {0, 1, 6}
    assert bool((data["consumer", "action"][..., 2] != 0).all())
    assert bool((data["firm", "action_mask"] == firm_allowed).all())  # the mask travels with the data

    # In the loss, the network sees the recorded mask and emits masked logits.
    seen = {}

    def record(module, args, output):
        seen["mask"], seen["logits"] = args[2].clone(), output[0].detach().clone()

    learner = session.learners["firm"]
    handle = session.policies["firm"].network.register_forward_hook(record)
    try:
        learner.advantages(data)
        learner.loss(data)
    finally:
        handle.remove()
    assert bool((seen["mask"] == firm_allowed).all())
    assert bool((seen["logits"][..., ~firm_allowed] < -1e8).all())

    # The loss's distribution gives a masked action a log-probability of about -1e9.
    td = data.clone()
    td["firm", "action"] = torch.full_like(td["firm", "action"], 8)  # not allowed
    dist = learner.loss.actor_network.get_dist(td)
    assert float(dist.log_prob(td["firm", "action"]).detach().max()) < -1e6
    td["firm", "action"] = torch.full_like(td["firm", "action"], 21)
    assert float(dist.log_prob(td["firm", "action"]).detach().min()) > -50


@pytest.mark.parametrize("group", ["consumer", "firm"])
def test_split_first_layer_equals_one_linear_layer_over_global_and_private_input(group):
    torch.manual_seed(0)
    env = RBCEnv(FULL_FIRMS, num_envs=4, seed=0)
    layout = group_layouts(env)[group]
    net = ActorCriticNetwork(layout, (16, 8))
    td = env.rollout(3, break_when_any_done=False)  # states beyond the reset one
    global_obs, private_obs = td["global_observation"], td[group, "observation"]
    mask = torch.ones(layout.logits_shape, dtype=torch.bool)
    logits, value = net(global_obs, private_obs, mask)

    # The spec's network: one Linear over [global, private] (spec 4.1 order), ReLU, ...
    first = nn.Linear(layout.global_dim + layout.private_dim, 16)
    with torch.no_grad():
        first.weight.copy_(torch.cat([net.global_in.weight, net.private_in.weight], dim=1))
        first.bias.copy_(net.global_in.bias)
    flat = full_observation(global_obs, private_obs)
    out = net.head(net.hidden(torch.relu(first(flat))))
    n = net.n_logits
    torch.testing.assert_close(logits, out[..., :n].reshape(*out.shape[:-1], *layout.logits_shape))
    torch.testing.assert_close(value, out[..., n:])
    assert net.private_in.bias is None  # a single bias, as in one affine layer


def test_network_runs_once_per_loss_call_and_critic_loss_is_huber():
    config = small_config(
        training={"num_envs": 4, "value_clip": False},
        curriculum=single_stage("c", 5, ["consumer"]),
    )
    session = Session(config)
    data = session.collect()
    learner = session.learners["consumer"]
    network = session.policies["consumer"].network
    learner.advantages(data)
    calls = []
    handle = network.register_forward_hook(lambda m, a, o: calls.append(o[1]))
    try:
        out = learner.loss(data)
    finally:
        handle.remove()
    assert len(calls) == 1  # actor and critic share one pass
    value = calls[0]
    target = data["consumer", "value_target"]
    huber = nn.functional.smooth_l1_loss(value, target)
    torch.testing.assert_close(out["loss_critic"], config.training.value_coef * huber)

    # the critic loss's gradient reaches the value head through that single pass
    network.zero_grad()
    out["loss_critic"].backward()
    assert network.head.weight.grad[-1].abs().sum() > 0

    # the rollout's stored value is the value head's output on the same observation
    with torch.no_grad():
        _, again = network(data["global_observation"], data["consumer", "observation"], data["consumer", "action_mask"])
    torch.testing.assert_close(again, data["consumer", "state_value"])


def test_value_clipping_never_lowers_the_critic_loss():
    config = small_config(curriculum=single_stage("c", 5, ["consumer"]))  # value_clip on by default
    session = Session(config)
    data = session.collect()
    learner = session.learners["consumer"]
    learner.advantages(data)
    out = learner.loss(data)
    with torch.no_grad():
        _, value = session.policies["consumer"].network(
            data["global_observation"], data["consumer", "observation"], data["consumer", "action_mask"]
        )
    unclipped = nn.functional.smooth_l1_loss(value, data["consumer", "value_target"])
    assert float(out["loss_critic"]) >= float(unclipped) - 1e-6


def test_user_network_factory_is_loaded_from_package_module_function(tmp_path, monkeypatch):
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(textwrap.dedent(
        """
        from pipeline.learning.policies import ActorCriticNetwork

        class Wide(ActorCriticNetwork):
            pass

        def wide(layout, options):
            return Wide(layout, (32,))

        def broken(layout, options):
            return "not a module"

        NOT_CALLABLE = 3
        """
    ))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = small_config(policy={"factory": "userpkg.nets:wide"})
    session = Session(config)
    for group in ("consumer", "firm", "government"):
        network = session.policies[group].network
        assert type(network).__name__ == "Wide"
        assert network.head.in_features == 32  # one hidden layer of 32, as the factory asked
    session.run_episode(_plan(session, ("consumer", "firm", "government")))

    with pytest.raises(ConfigError, match="userpkg.nets:missing.*has no 'missing'"):
        load_factory("userpkg.nets:missing")
    with pytest.raises(ConfigError, match="nosuchpkg.nets:f.*cannot be imported"):
        load_factory("nosuchpkg.nets:f")
    with pytest.raises(ConfigError, match="not callable"):
        load_factory("userpkg.nets:NOT_CALLABLE")
    with pytest.raises(ConfigError, match="package.module:function"):
        load_factory("userpkg.nets:")
    with pytest.raises(ConfigError, match=r"policy\.factory='userpkg.nets:broken' \(it returned str for consumer"):
        Session(small_config(policy={"factory": "userpkg.nets:broken"}))
    with pytest.raises(ConfigError, match="policy.factory"):
        small_config(policy={"factory": "no_colon_here"})
    sys.modules.pop("userpkg.nets", None)
    sys.modules.pop("userpkg", None)


def _plan(session, train):
    from pipeline.learning.curriculum import Curriculum

    plan = Curriculum(session.config.curriculum, session.economy).plan(0)
    return type(plan)(**{**plan.__dict__, "train": train})


def test_bf16_network_stays_close_to_fp32():
    torch.manual_seed(0)
    env = RBCEnv(FULL_FIRMS, num_envs=4, seed=0)
    layout = group_layouts(env)["consumer"]
    fp32 = ActorCriticNetwork(layout)
    bf16 = ActorCriticNetwork(layout, bf16=True)
    bf16.load_state_dict(fp32.state_dict())
    td = env.rollout(3, break_when_any_done=False)
    args = (td["global_observation"], td["consumer", "observation"], env.action_mask("consumer"))
    logits32, value32 = fp32(*args)
    logits16, value16 = bf16(*args)
    assert logits16.dtype == torch.float32  # outputs are cast back for the softmax and the ratio
    finite = logits32 > -1e8
    torch.testing.assert_close(logits16[finite], logits32[finite], atol=0.03, rtol=0.02)
    torch.testing.assert_close(value16, value32, atol=0.03, rtol=0.02)


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags as the Linux kernel lists them (None where there is no /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((line for line in text.splitlines() if line.startswith("flags")), None)
    return set(line.split(":", 1)[1].split()) if line else None


def fast_bf16_by_flags() -> bool | None:
    """Whether bf16 should be fast here, read apart from PyTorch: bf16 instructions (AVX-512 BF16, AMX) make it
    fast; a CPU without AVX-512, AMX or AVX-NE-CONVERT has only oneDNN's slow reference kernels. None where the
    flags do not decide (AVX-512 without BF16) or cannot be read (no /proc/cpuinfo, not x86-64)."""
    flags = cpu_flags()
    if flags is None or platform.machine() not in ("x86_64", "AMD64"):
        return None
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    if not any(f.startswith(("avx512", "amx")) or f == "avx_ne_convert" for f in flags):
        return False
    return None


def test_bf16_auto_follows_the_cpu_and_explicit_settings_are_obeyed():
    from pipeline.learning.policies import default_network, resolve_bf16

    assert resolve_bf16(True) is True and resolve_bf16(False) is False
    env = RBCEnv(FULL_FIRMS, num_envs=1, seed=0)
    layout = group_layouts(env)["firm"]
    assert default_network(layout, {"bf16": True}).bf16 is True
    assert default_network(layout, {"bf16": False}).bf16 is False
    expected = fast_bf16_by_flags()
    if expected is None:
        pytest.skip("this CPU's flags do not decide whether bf16 is fast")
    assert resolve_bf16("auto") is expected
    assert default_network(layout, {"bf16": "auto"}).bf16 is expected


@pytest.mark.parametrize("encoding", ["symlog", "digits"])
def test_firm_equivariant_consumers_score_firms_by_their_terms_not_their_index(encoding):
    from pipeline.learning.equivariant import FirmEquivariantConsumerNetwork, build

    torch.manual_seed(0)
    env = RBCEnv(RBCConfig(n_consumers=3, n_firms=4, observation_encoding=encoding), num_envs=2, seed=0)
    layouts = group_layouts(env)
    network = build(layouts["consumer"], {"hidden_sizes": [16, 16]})
    assert isinstance(network, FirmEquivariantConsumerNetwork)
    assert isinstance(build(layouts["firm"], {}), ActorCriticNetwork)
    td = env.reset()
    glob = td["global_observation"].clone()
    terms = network.firm_terms(glob)
    assert terms.shape == (2, 4, 3 + network.stock_width)
    assert torch.equal(terms[..., 0], glob[..., :4])  # prices first
    # firms 1 and 3 post the same terms as firm 0; firm 2 differs
    F, w = 4, network.stock_width
    for i in (1, 3):
        glob[..., i] = glob[..., 0]
        glob[..., F + i] = glob[..., F]
        glob[..., 2 * F + i * w:2 * F + (i + 1) * w] = glob[..., 2 * F:2 * F + w]
        glob[..., 2 * F + F * w + i] = glob[..., 2 * F + F * w]
    glob[..., 2] = glob[..., 0] + 0.5
    mask = env.action_mask("consumer")
    logits, value = network(glob, td["consumer", "observation"], mask)
    assert logits.shape == (2, 3, *mask.shape) and value.shape == (2, 3, 1)
    assert (logits[..., ~mask] <= -1e8).all()  # padding and masked choices stay masked
    consumption, employer = logits[..., :F, :], logits[..., F + 1, :F]
    for i in (1, 3):
        torch.testing.assert_close(consumption[..., i, :], consumption[..., 0, :])
        torch.testing.assert_close(employer[..., i], employer[..., 0])
    assert not torch.allclose(employer[..., 2], employer[..., 0])
    logits.masked_fill(~mask, 0).sum().add(value.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in network.parameters())


def test_firm_equivariant_consumers_train_in_a_session():
    session = Session(small_config(policy={"factory": "pipeline.learning.equivariant:build"}))
    network = session.policies["consumer"].network
    assert type(network).__name__ == "FirmEquivariantConsumerNetwork"
    before = [p.detach().clone() for p in network.parameters()]
    session.run_episode(_plan(session, ("consumer", "firm", "government")))
    assert any(not torch.equal(a, b) for a, b in zip(before, network.parameters()))


def test_a_factory_without_a_signature_that_refuses_the_call_is_a_config_error():
    """iter has no inspectable signature: only the call tells, and its TypeError comes from the call itself."""
    with pytest.raises(ConfigError, match=r"policy\.factory='builtins:iter' \(it cannot be called with \(layout, "
                                          r"options\): iter\(v, w\): v must be callable\)"):
        Session(small_config(policy={"factory": "builtins:iter"}))


def test_a_type_error_inside_a_factory_stays_the_factorys_bug(tmp_path, monkeypatch):
    package = tmp_path / "faultypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text("def build(layout, options):\n    return len(layout, options)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match=r"len\(\) takes exactly one argument"):
        Session(small_config(policy={"factory": "faultypkg.nets:build"}))
    for name in [m for m in sys.modules if m == "faultypkg" or m.startswith("faultypkg.")]:
        monkeypatch.delitem(sys.modules, name)
