"""Per-type actor-critics (spec 7.2) wrapped in TorchRL/tensordict modules.

One network per agent type, shared by all agents of that type: a ReLU trunk (2 x 128 by default)
whose output feeds the categorical heads and a value head. The first layer is split into a global
part, computed once per economy, and a private part, computed per agent; summing them is the
same affine map as the spec's single layer over the concatenated input, at a fraction of the cost
for 100 consumers who share one global state.

The value head shares the trunk, so one forward pass yields both the logits and the value. The
actor writes the value under `value_pred`; `ValueFromActor`, used as the PPO critic, only moves
it to `state_value`, so the loss never runs the trunk twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from torch import Tensor, nn
from torchrl.modules import ProbabilisticActor

from envs.rbc.config import ConfigError
from envs.rbc.env import RBCEnv

from .. import factory as factory_hook
from .distributions import JointCategorical, MultiHeadCategorical, mask_logits

GLOBAL_KEY = "global_observation"


@dataclass(frozen=True)
class GroupLayout:
    """What a group's network must read and produce, taken from the environment."""

    group: str
    n_agents: int
    global_dim: int  # 0 when the group's own observation already is the global state
    private_dim: int
    logits_shape: tuple[int, ...]  # (heads, choices) for consumers, (actions,) otherwise

    @property
    def multi_head(self) -> bool:
        return len(self.logits_shape) == 2


def group_layouts(env: RBCEnv) -> dict[str, GroupLayout]:
    enc = env.encoder
    config = env.config
    return {
        "consumer": GroupLayout(
            "consumer", config.n_consumers, enc.global_dim, enc.consumer_dim, tuple(env.action_mask("consumer").shape)
        ),
        "firm": GroupLayout("firm", config.n_firms, enc.global_dim, enc.firm_dim, (config.n_firm_actions,)),
        "government": GroupLayout("government", 1, 0, enc.global_dim, (config.n_government_actions,)),
    }


class ActorCriticNetwork(nn.Module):
    """Trunk + categorical logits + value, from (global, private, mask) to (masked logits, value)."""

    def __init__(self, layout: GroupLayout, hidden_sizes: tuple[int, ...] = (128, 128), bf16: bool = False):
        super().__init__()
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one layer")
        self.layout = layout
        self.bf16 = bf16
        width = hidden_sizes[0]
        self.global_in = nn.Linear(layout.global_dim, width) if layout.global_dim else None
        self.private_in = nn.Linear(layout.private_dim, width, bias=self.global_in is None)
        layers: list[nn.Module] = []
        for size in hidden_sizes[1:]:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.n_logits = int(torch.tensor(layout.logits_shape).prod())
        self.head = nn.Linear(width, self.n_logits + 1)  # logits, then the value

    def forward(self, global_obs: Tensor | None, private_obs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16 and private_obs.device.type == "cpu"):
            pre = self.private_in(private_obs)
            if self.global_in is not None:
                pre = pre + self.global_in(global_obs).unsqueeze(-2)
            out = self.head(self.hidden(torch.relu(pre)))
        out = out.float()
        logits = out[..., : self.n_logits].reshape(*out.shape[:-1], *self.layout.logits_shape)
        value = out[..., self.n_logits :]
        return mask_logits(logits, mask), value


class ValueFromActor(TensorDictModuleBase):
    """The PPO critic of a shared-trunk network: exposes the value the actor pass just computed."""

    def __init__(self, group: str):
        super().__init__()
        self.in_keys = [(group, "value_pred")]
        self.out_keys = [(group, "state_value")]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        value = tensordict.get(self.in_keys[0], None)
        if value is None:
            raise KeyError(
                f"{self.in_keys[0]} is missing: the critic reads the value written by the actor's forward pass, "
                "so the actor must run on this tensordict first"
            )
        tensordict.set(self.out_keys[0], value)
        return tensordict


class DropKeys(TensorDictModuleBase):
    """Removes bulky intermediates (logits) from the rollout so they are not stored per step."""

    def __init__(self, keys: list):
        super().__init__()
        self.in_keys = list(keys)
        self.out_keys = []

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        for key in self.in_keys:
            tensordict.pop(key, None)
        return tensordict


class FixedAction(TensorDictModuleBase):
    """A frozen deterministic policy: every agent of the group always takes the same action.

    `action` is one agent's action: an int for firms and the government (a joint-action index),
    a sequence of head indices for consumers. Used for the fixed-tax baselines and for test
    economies; it writes a zero log-probability and value so the rollout has the same keys as
    with a learned policy.
    """

    def __init__(self, group: str, n_agents: int, action):
        super().__init__()
        self.group, self.n_agents = group, n_agents
        self.register_buffer("action", torch.as_tensor(action, dtype=torch.int64))
        self.in_keys = [GLOBAL_KEY]
        self.out_keys = [(group, "action"), (group, "log_prob"), (group, "state_value")]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        batch = (*tensordict.batch_size, self.n_agents)
        device = tensordict.device
        action = self.action.to(device).expand(*batch, *self.action.shape).clone()
        tensordict.set((self.group, "action"), action)
        tensordict.set((self.group, "log_prob"), torch.zeros(batch, device=device))
        tensordict.set((self.group, "state_value"), torch.zeros(*batch, 1, device=device))
        return tensordict


NetworkFactory = Callable[[GroupLayout, dict], nn.Module]


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN multiplies bf16 matrices with the CPU's own instructions (AVX-512 or AMX).

    Without them (an AVX2-only CPU) PyTorch falls back to a reference kernel and bf16 autocast makes a
    training iteration about 5 times slower than fp32 instead of 1.3 times faster (benchmarks/train_throughput.py
    on both kinds of machine).
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_bf16(setting: bool | str) -> bool:
    """`policy.bf16` as a decision for this machine: "auto" is bf16 where it is fast, fp32 elsewhere."""
    return cpu_has_fast_bf16() if setting == "auto" else bool(setting)


def default_network(layout: GroupLayout, options: dict) -> nn.Module:
    return ActorCriticNetwork(layout, tuple(options.get("hidden_sizes", (128, 128))),
                              resolve_bf16(options.get("bf16", False)))


def load_factory(path: str | None) -> NetworkFactory:
    """`package.module:function` -> the callable; None -> the spec's network.

    A factory that cannot be used is a bad config value (ConfigError, a ValueError), so the
    command-line tools report it like any other invalid setting.
    """
    return default_network if not path else factory_hook.load_factory(path)


def make_network(make: NetworkFactory, layout: GroupLayout, options: dict, path: str | None) -> nn.Module:
    """One group's network from the factory; a call the factory refuses, or a result that is no network, is
    the config's fault and named as such (errors raised inside the factory's own code stay the user's bugs)."""
    try:
        network = make(layout, options)
    except TypeError as err:
        if err.__traceback__ is not None and err.__traceback__.tb_next is None:  # raised by the call itself
            raise ConfigError(f"invalid config: policy.factory={path!r} (it cannot be called with (layout, options): "
                              f"{err}); allowed: {factory_hook.ALLOWED}") from None
        raise
    if not isinstance(network, nn.Module):
        raise ConfigError(f"invalid config: policy.factory={path!r} (it returned {type(network).__name__} for "
                          f"{layout.group}, not a network); allowed: {factory_hook.ALLOWED}")
    return network


class TypePolicy:
    """The actor, its critic view and its network for one agent type."""

    def __init__(self, layout: GroupLayout, network: nn.Module):
        group = layout.group
        self.layout = layout
        self.network = network
        out_keys = [(group, "logits"), (group, "value_pred")]
        own_keys = [(group, "observation"), (group, "action_mask")]
        if layout.global_dim:
            module = TensorDictModule(network, in_keys=[GLOBAL_KEY, *own_keys], out_keys=out_keys)
        else:
            module = TensorDictModule(_NoGlobal(network), in_keys=own_keys, out_keys=out_keys)
        self.actor = ProbabilisticActor(
            module=module,
            in_keys={"logits": (group, "logits")},
            out_keys=[(group, "action")],
            distribution_class=MultiHeadCategorical if layout.multi_head else JointCategorical,
            return_log_prob=True,
            log_prob_key=(group, "log_prob"),
        )
        self.critic = ValueFromActor(group)
        self.collector = TensorDictSequential(
            self.actor, self.critic, DropKeys([(group, "logits"), (group, "value_pred")])
        )


class _NoGlobal(nn.Module):
    """Adapter for a group whose observation is the global state itself (the government)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, private_obs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.network(None, private_obs, mask)


def build_policies(env: RBCEnv, options: dict | None = None, factory: str | None = None) -> dict[str, TypePolicy]:
    """One TypePolicy per group, networks made by `factory` (default: the spec's 2 x 128 MLP)."""
    options = dict(options or {})
    make = load_factory(factory)
    policies = {}
    for group, layout in group_layouts(env).items():
        policies[group] = TypePolicy(layout, make_network(make, layout, options, factory))
    return policies
