"""The RBC economy as a batched multi-agent TorchRL environment.

Thin glue over `dynamics.py`: specs are built once (`specs.py`), `_step` checks and decodes the
actions, calls the step function of the chosen backend and lays its results out as nested
TensorDicts (`readout.py`), one sub-tensordict per agent group (`consumer`, `firm`, `government`)
following TorchRL's multi-agent convention; `group_map`, `agent_names` and `n_agents` describe the
agents as VMAS's wrapper does.

The global observation is stored once per economy at the root (`global_observation`) instead of
once per agent; each group's `observation` holds that agent's private features (the government,
which has none, gets the global observation itself). `envs.rbc.observations.full_observation`
rebuilds the spec's flat per-agent input when wanted.
"""

from __future__ import annotations

from typing import Callable

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Composite
from torchrl.envs import EnvBase

from .actions import consumer_head_mask, out_of_range, spec_mask, uniform_allowed
from .backends import StepBackend, resolve_backend
from .config import RBCConfig
from .dynamics import (
    Decisions,
    EconomyParameters,
    EconomyState,
    Penalties,
    StepOutcome,
    decode_actions,
    initial_state,
    reset_where,
    step_economy,
)
from .observations import ObservationEncoder
from .readout import step_output
from .specs import CONSUMER_READOUT, FIRM_READOUT, GOVERNMENT_READOUT, build_specs  # noqa: F401 (re-exported)

GROUPS = ("consumer", "firm", "government")
WRAPPED_HINT = (" (a wrapper that samples from its own copy of the action spec, such as SerialEnv or a used TransformedEnv, "
                "needs envs.rbc.action_mask_transform appended: docs/model.md, 'Action masks')")

StepFunction = Callable[[EconomyParameters, EconomyState, Decisions, Penalties], tuple[EconomyState, StepOutcome]]

class RBCEnv(EnvBase):
    """`num_envs` independent copies of the RBC economy stepped together.

    Curriculum controls, valid between episodes (they are read at the next reset or step):
    `set_action_mask(group, mask)`, `set_labor_disutility_anneal(factor)` and
    `set_no_ponzi_multipliers(consumer=..., firm=...)`.
    """

    batch_locked = True

    def __init__(
        self,
        config: RBCConfig | None = None,
        num_envs: int = 1,
        device: torch.device | str = "cpu",
        seed: int | None = None,
        backend: str = "torch",
    ):
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid; allowed: a positive integer")
        config = config if config is not None else RBCConfig()
        # Resolved first, so that a missing GPU stack is reported as such rather than by torch.
        kernels: StepBackend | None = resolve_backend(backend, config, device)
        if kernels is not None:
            device = kernels.device
        super().__init__(device=device, batch_size=torch.Size([num_envs]))
        self.config = config
        self.num_envs = num_envs
        self.backend = backend
        self.params = EconomyParameters.from_config(self.config, self.device)
        self.encoder = ObservationEncoder(self.config, self.params)
        self._step_function: StepFunction = step_economy
        self._kernels = kernels
        self._anneal = float(self.config.labor_disutility_anneal)
        self._penalties = Penalties(self.config.consumer_no_ponzi_multiplier, self.config.firm_no_ponzi_multiplier)
        self._masks = {
            "consumer": consumer_head_mask(self.config, self.device),
            "firm": torch.ones(self.config.n_firm_actions, dtype=torch.bool, device=self.device),
            "government": torch.ones(self.config.n_government_actions, dtype=torch.bool, device=self.device),
        }
        self._masks_restrict = {group: False for group in GROUPS}
        self._group_sizes = {"consumer": self.config.n_consumers, "firm": self.config.n_firms, "government": 1}
        self._choices = {
            "consumer": torch.tensor(self.config.consumer_head_sizes, device=self.device),
            "firm": self.config.n_firm_actions,
            "government": self.config.n_government_actions,
        }
        self._make_specs()
        self._state = initial_state(self.params, num_envs, self._anneal, self.device)
        if seed is not None:
            self.set_seed(seed)

    # ------------------------------------------------------------------ public helpers
    @property
    def group_map(self) -> dict[str, list[str]]:
        """Agent names per group, in the form TorchRL's multi-agent tooling expects."""
        return {group: [f"{group}_{i}" for i in range(n)] for group, n in self._group_sizes.items()}

    @property
    def agent_names(self) -> list[str]:
        """Every agent of one economy, group by group (VMAS's flat list; `group_map` splits it)."""
        return [name for names in self.group_map.values() for name in names]

    @property
    def n_agents(self) -> int:
        """Agents in one economy, all groups together (VMAS's count; per group: `group_map`)."""
        return sum(self._group_sizes.values())

    @property
    def state(self) -> EconomyState:
        """The current state of every economy (read-only view for tests and diagnostics)."""
        return self._state

    @property
    def labor_disutility_anneal(self) -> float:
        return self._anneal

    @property
    def no_ponzi_multipliers(self) -> Penalties:
        return self._penalties

    def action_mask(self, group: str) -> torch.Tensor:
        """The mask in force for `group`: (heads, choices) for consumers, (actions,) otherwise."""
        _check_group(group)
        return self._masks[group]

    def set_action_mask(self, group: str, mask: torch.Tensor) -> None:
        """Restrict the actions of every agent of `group` (True = allowed), from the next step on.

        The env refuses to take a masked action (ValueError) unless `check_action_masks` is off,
        and `rand_action` samples only allowed actions. The mask shows in each group's
        `action_mask` observation, which a policy reads through any wrapper; a wrapper that samples
        from its own copy of the action spec (`TransformedEnv` after its first use, `SerialEnv`,
        `ParallelEnv`) follows it only with `envs.rbc.action_mask_transform` appended (docs/model.md).
        """
        _check_group(group)
        expected = tuple(self._masks[group].shape)
        mask = torch.as_tensor(mask, device=self.device)
        if mask.dtype != torch.bool or tuple(mask.shape) != expected:
            raise ValueError(
                f"action mask for {group!r} must be a bool tensor of shape {expected}, "
                f"got dtype={mask.dtype}, shape={tuple(mask.shape)}"
            )
        if group == "consumer":
            padding = ~consumer_head_mask(self.config, self.device)
            if (mask & padding).any():
                raise ValueError("consumer action mask allows padding entries beyond a head's number of choices")
            mask = mask & ~padding
            if not mask.any(-1).all():
                raise ValueError("consumer action mask leaves a head with no allowed choice")
            self._masks_restrict[group] = bool((mask != ~padding).any())
        else:
            if not mask.any():
                raise ValueError(f"action mask for {group!r} allows no action")
            self._masks_restrict[group] = not bool(mask.all())
        self._masks[group] = mask.clone()
        self._sync_spec_mask(group)

    def _sync_spec_mask(self, group: str) -> None:
        """The action spec's mask in TorchRL's layout (flat over the consumers' heads), None where all is allowed."""
        self.full_action_spec[group, "action"].update_mask(spec_mask(group, self._masks[group], self.config))

    def to(self, device: torch.device | str) -> "RBCEnv":
        """Moves the economies, their parameters, masks and specs to `device` (no dtype: the model is float32).

        A kernel backend is built for one device and stays there: build a new env for another.
        """
        if isinstance(device, torch.dtype):
            raise TypeError(f"RBCEnv.to({device}) is not supported: the economy computes in float32; pass a device")
        device = torch.device(device)
        if device == self.device:
            return self
        if self._kernels is not None:
            raise ValueError(f"backend={self.backend!r} runs on {self.device} and cannot move to {device}: "
                             f"build RBCEnv(..., device={str(device)!r}) instead")
        # Spec masks are worked out where the masks are (a meta tensor cannot say which entries are True).
        spec_masks = {group: spec_mask(group, self._masks[group], self.config) for group in GROUPS}
        self.params = self.params.to(device)
        self.encoder = ObservationEncoder(self.config, self.params)
        self._state = EconomyState(*(t.to(device) for t in self._state))
        self._masks = {group: mask.to(device) for group, mask in self._masks.items()}
        self._choices = {g: c.to(device) if isinstance(c, torch.Tensor) else c for g, c in self._choices.items()}
        # The specs are built anew rather than moved: TorchRL's spec.to() drops action masks, and cannot
        # move a MultiCategorical to a device that refuses .item() (meta).
        locked = self.is_spec_locked
        self.set_spec_lock_(False)
        try:
            self._device = device
            self.__dict__["_output_spec"] = Composite(
                {name: Composite(shape=self.batch_size, device=device)
                 for name in ("full_observation_spec", "full_reward_spec", "full_done_spec")},
                shape=self.batch_size, device=device,
            )
            self.__dict__["_input_spec"] = Composite(
                {name: Composite(shape=self.batch_size, device=device) for name in ("full_state_spec", "full_action_spec")},
                shape=self.batch_size, device=device,
            )
            self._make_specs()
            for group, mask in spec_masks.items():
                self.full_action_spec[group, "action"].update_mask(None if mask is None else mask.to(device))
            self._cache.clear()
        finally:
            self.set_spec_lock_(locked)
        return self

    def set_labor_disutility_anneal(self, factor: float) -> None:
        """The curriculum's theta multiplier m(e) in [0, 1]; applies from the next reset (spec 6)."""
        factor = float(factor)
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"labor disutility anneal factor={factor} is invalid; allowed: a number in [0, 1]")
        self._anneal = factor

    def set_no_ponzi_multipliers(self, consumer: float | None = None, firm: float | None = None) -> None:
        """No-Ponzi penalty multipliers (spec 5.4), applied on each episode's last step."""
        values = self._penalties._asdict()
        for name, value in (("consumer", consumer), ("firm", firm)):
            if value is None:
                continue
            value = float(value)
            if value < 0:
                raise ValueError(f"no-Ponzi multiplier {name}={value} is invalid; allowed: a number >= 0")
            values[name] = value
        self._penalties = Penalties(**values)

    # ------------------------------------------------------------------ specs
    def _make_specs(self) -> None:
        specs = build_specs(self.config, self.encoder, self.num_envs, self.device, tuple(self._masks["consumer"].shape))
        self.observation_spec, self.action_spec = specs.observation, specs.action
        self.reward_spec, self.done_spec = specs.reward, specs.done

    # ------------------------------------------------------------------ EnvBase API
    def _set_seed(self, seed: int | None) -> None:
        # The economy itself is deterministic; the seed makes `rand_action` rollouts reproducible.
        if seed is not None:
            torch.manual_seed(seed)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        reset = tensordict.get("_reset", None) if tensordict is not None else None
        if self._kernels is not None:
            mask = None if reset is None else reset.reshape(-1)
            self._state, observations = self._kernels.reset(self._state, mask, self._anneal)
            return step_output(self, self._state, self._state, outcome=None, observations=observations)
        fresh = initial_state(self.params, self.num_envs, self._anneal, self.device)
        if reset is None:
            self._state = fresh
        else:
            self._state = reset_where(reset.reshape(-1), fresh, self._state)
        return step_output(self, self._state, self._state, outcome=None)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        actions = tuple(tensordict.get((group, "action")) for group in GROUPS)
        if self._kernels is not None:  # the kernels do not check bounds: a stray index would read stray memory
            self._refuse_out_of_range(actions)
        before = self._state
        try:
            if self.config.check_action_masks:
                self._refuse_masked(*actions)
            after, outcome, hours, employer, observations = self._advance(before, *actions)
        except (IndexError, RuntimeError) as err:
            # torch's indexing refuses an out-of-range action without naming it: name it, at no cost to valid steps
            self._refuse_out_of_range(actions, cause=err)
            raise
        self._state = after
        return step_output(self, before, after, outcome, hours, employer, observations)

    def _advance(self, before: EconomyState, consumer_action, firm_action, government_action):
        if self._kernels is None:
            decisions = decode_actions(self.params, consumer_action, firm_action, government_action)
            after, outcome = self._step_function(self.params, before, decisions, self._penalties)
            return after, outcome, decisions.hours, decisions.employer, None
        # one fused launch: decoding, the step, rewards and the next observations
        after, outcome, hours, observations = self._kernels.step(
            before, consumer_action, firm_action, government_action, self._penalties
        )
        return after, outcome, hours, consumer_action[..., self.config.n_firms + 1], observations

    def _refuse_out_of_range(self, actions: tuple[torch.Tensor, ...], cause: BaseException | None = None) -> None:
        for group, action in zip(GROUPS, actions):
            problem = out_of_range(group, action, self._choices[group])
            if problem is not None:
                raise ValueError(problem) from cause

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """Uniform random actions among the allowed ones, sampled in a few vectorized ops.

        Replaces the spec-based sampler, which is orders of magnitude slower for the consumers'
        per-agent multi-head spec.
        """
        E = self.num_envs
        sizes = {"consumer": (E, self.config.n_consumers), "firm": (E, self.config.n_firms), "government": (E, 1)}
        actions = TensorDict(
            {
                group: TensorDict({"action": uniform_allowed(self._masks[group], sizes[group])}, batch_size=sizes[group])
                for group in GROUPS
            },
            batch_size=(E,),
            device=self.device,
        )
        if tensordict is None:
            return actions
        return tensordict.update(actions)

    # ------------------------------------------------------------------ internals
    def _refuse_masked(self, consumer_action, firm_action, government_action) -> None:
        for group, action in (("firm", firm_action), ("government", government_action)):
            if self._masks_restrict[group] and not bool(self._masks[group][action].all()):
                bad = action[~self._masks[group][action]].unique().tolist()
                raise ValueError(f"{group} took masked action(s) {bad}; the env never takes a masked action{WRAPPED_HINT}")
        if self._masks_restrict["consumer"]:
            heads = torch.arange(consumer_action.shape[-1], device=self.device)
            if not bool(self._masks["consumer"][heads, consumer_action].all()):
                raise ValueError(f"consumer took a masked action; the env never takes a masked action{WRAPPED_HINT}")


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ValueError(f"group={group!r} is invalid; allowed: {' | '.join(GROUPS)}")
