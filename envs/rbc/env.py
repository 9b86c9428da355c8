"""The RBC economy as a batched multi-agent TorchRL environment.

Thin glue over `dynamics.py`: specs are built once, `_step` decodes the actions, calls the step
function of the chosen backend and lays its results out as nested TensorDicts, one sub-tensordict
per agent group (`consumer`, `firm`, `government`) following TorchRL's multi-agent convention.

The global observation is stored once per economy at the root (`global_observation`) instead of
once per agent; each group's `observation` holds that agent's private features (the government,
which has none, gets the global observation itself). `envs.rbc.observations.full_observation`
rebuilds the spec's flat per-agent input when wanted.
"""

from __future__ import annotations

from typing import Callable

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, MultiCategorical, Unbounded
from torchrl.envs import EnvBase

from .actions import consumer_head_mask
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

GROUPS = ("consumer", "firm", "government")

StepFunction = Callable[[EconomyParameters, EconomyState, Decisions, Penalties], tuple[EconomyState, StepOutcome]]

# Economic readout written under each group (see docs/model.md for units).
CONSUMER_READOUT = ("budget", "consumption", "hours", "employer", "labor_income", "income_tax", "transfer")
FIRM_READOUT = (
    "budget",
    "capital",
    "inventory",
    "price",
    "wage",
    "production",
    "sales",
    "exports",
    "revenue",
    "wage_bill",
    "investment",
    "profit",
    "corporate_tax",
)
GOVERNMENT_READOUT = ("income_tax_rate", "corporate_tax_rate", "revenue", "welfare")


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
        self._make_specs()
        self._state = initial_state(self.params, num_envs, self._anneal, self.device)
        if seed is not None:
            self.set_seed(seed)

    # ------------------------------------------------------------------ public helpers
    @property
    def group_map(self) -> dict[str, list[str]]:
        """Agent names per group, in the form TorchRL's multi-agent tooling expects."""
        sizes = {"consumer": self.config.n_consumers, "firm": self.config.n_firms, "government": 1}
        return {group: [f"{group}_{i}" for i in range(n)] for group, n in sizes.items()}

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
        and `rand_action` samples only allowed actions.
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
            self.full_action_spec[group, "action"].update_mask(mask[~padding].reshape(-1))
        else:
            if not mask.any():
                raise ValueError(f"action mask for {group!r} allows no action")
            self._masks_restrict[group] = not bool(mask.all())
            self.full_action_spec[group, "action"].update_mask(mask)
        self._masks[group] = mask.clone()

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
        E = self.num_envs
        C, F = self.config.n_consumers, self.config.n_firms
        H, K = self._masks["consumer"].shape
        enc = self.encoder
        dev = self.device

        def real(*shape):
            return Unbounded(shape=(E, *shape), dtype=torch.float32, device=dev)

        def flag(*shape):
            return Categorical(n=2, shape=(E, *shape), dtype=torch.bool, device=dev)

        consumer_obs = {name: real(C) for name in CONSUMER_READOUT}
        consumer_obs.update(
            observation=real(C, enc.consumer_dim),
            action_mask=flag(C, H, K),
            consumption=real(C, F),
            employer=Categorical(n=F, shape=(E, C), dtype=torch.int64, device=dev),
        )
        firm_obs = {name: real(F) for name in FIRM_READOUT}
        firm_obs.update(observation=real(F, enc.firm_dim), action_mask=flag(F, self.config.n_firm_actions))
        government_obs = {name: real(1) for name in GOVERNMENT_READOUT}
        government_obs.update(
            observation=real(1, enc.global_dim), action_mask=flag(1, self.config.n_government_actions)
        )
        self.observation_spec = Composite(
            global_observation=real(enc.global_dim),
            consumer=Composite(consumer_obs, shape=(E, C)),
            firm=Composite(firm_obs, shape=(E, F)),
            government=Composite(government_obs, shape=(E, 1)),
            shape=(E,),
        )
        nvec = torch.tensor(self.config.consumer_head_sizes)
        self.action_spec = Composite(
            consumer=Composite(
                action=MultiCategorical(nvec=nvec, shape=(E, C, H), dtype=torch.int64, device=dev), shape=(E, C)
            ),
            firm=Composite(
                action=Categorical(n=self.config.n_firm_actions, shape=(E, F), dtype=torch.int64, device=dev),
                shape=(E, F),
            ),
            government=Composite(
                action=Categorical(n=self.config.n_government_actions, shape=(E, 1), dtype=torch.int64, device=dev),
                shape=(E, 1),
            ),
            shape=(E,),
        )
        self.reward_spec = Composite(
            {group: Composite(reward=real(n, 1), shape=(E, n)) for group, n in (("consumer", C), ("firm", F), ("government", 1))},
            shape=(E,),
        )
        self.done_spec = Composite(done=flag(1), terminated=flag(1), shape=(E,))

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
            return self._output(self._state, self._state, outcome=None, observations=observations)
        fresh = initial_state(self.params, self.num_envs, self._anneal, self.device)
        if reset is None:
            self._state = fresh
        else:
            self._state = reset_where(reset.reshape(-1), fresh, self._state)
        return self._output(self._state, self._state, outcome=None)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        consumer_action = tensordict.get(("consumer", "action"))
        firm_action = tensordict.get(("firm", "action"))
        government_action = tensordict.get(("government", "action"))
        if self.config.check_action_masks:
            self._refuse_masked(consumer_action, firm_action, government_action)
        before = self._state
        if self._kernels is None:
            decisions = decode_actions(self.params, consumer_action, firm_action, government_action)
            after, outcome = self._step_function(self.params, before, decisions, self._penalties)
            hours, employer, observations = decisions.hours, decisions.employer, None
        else:  # one fused launch: decoding, the step, rewards and the next observations
            after, outcome, hours, observations = self._kernels.step(
                before, consumer_action, firm_action, government_action, self._penalties
            )
            employer = consumer_action[..., self.config.n_firms + 1]
        self._state = after
        output = self._output(before, after, outcome, hours, employer, observations)
        return output

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """Uniform random actions among the allowed ones, sampled in a few vectorized ops.

        Replaces the spec-based sampler, which is orders of magnitude slower for the consumers'
        per-agent multi-head spec.
        """
        E = self.num_envs
        sizes = {"consumer": (E, self.config.n_consumers), "firm": (E, self.config.n_firms), "government": (E, 1)}
        actions = TensorDict(
            {
                group: TensorDict({"action": _uniform_allowed(self._masks[group], sizes[group])}, batch_size=sizes[group])
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
                raise ValueError(f"{group} took masked action(s) {bad}; the env never takes a masked action")
        if self._masks_restrict["consumer"]:
            heads = torch.arange(consumer_action.shape[-1], device=self.device)
            if not bool(self._masks["consumer"][heads, consumer_action].all()):
                raise ValueError("consumer took a masked action; the env never takes a masked action")

    def _output(
        self,
        before: EconomyState,
        after: EconomyState,
        outcome: StepOutcome | None,
        hours: torch.Tensor | None = None,
        employer: torch.Tensor | None = None,
        observations: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> TensorDictBase:
        """Observations of `after`, rewards and the readout of the step from `before` to `after`.

        `observations` (global, consumer, firm), when a kernel backend has already encoded `after`.
        """
        E, C, F = self.num_envs, self.config.n_consumers, self.config.n_firms
        enc = self.encoder
        if observations is None:
            global_obs, consumer_obs, firm_obs = (
                enc.global_observation(after),
                enc.consumer_observation(after),
                enc.firm_observation(after),
            )
        else:
            global_obs, consumer_obs, firm_obs = observations
        if outcome is None:  # at reset: stocks of the initial state, zero flows
            zero_c = torch.zeros(E, C, device=self.device)
            zero_f = torch.zeros(E, F, device=self.device)
            zero_g = torch.zeros(E, device=self.device)
            consumption, hours, employer = zero_c.unsqueeze(-1).expand(E, C, F), zero_c, zero_c.long()
            labor_income = income_tax = transfer = zero_c
            production = sales = exports = revenue = wage_bill = investment = profit = corporate_tax = zero_f
            tax_revenue = welfare = zero_g
        else:
            consumption = outcome.consumption
            labor_income, income_tax, transfer = outcome.labor_income, outcome.income_tax_paid, outcome.transfer
            production, sales, exports = outcome.production, outcome.sales, outcome.exports
            revenue, wage_bill, investment = outcome.revenue, outcome.wage_bill, outcome.investment
            profit, corporate_tax = outcome.profit, outcome.corporate_tax_paid
            tax_revenue, welfare = outcome.tax_revenue, outcome.welfare

        consumer = {
            "observation": consumer_obs,
            "action_mask": self._masks["consumer"].expand(E, C, *self._masks["consumer"].shape),
            "budget": after.consumer_budget,
            "consumption": consumption,
            "hours": hours,
            "employer": employer,
            "labor_income": labor_income,
            "income_tax": income_tax,
            "transfer": transfer,
        }
        firm = {
            "observation": firm_obs,
            "action_mask": self._masks["firm"].expand(E, F, -1),
            "budget": after.firm_budget,
            "capital": after.capital,
            "inventory": after.inventory,
            "price": before.price,
            "wage": before.wage,
            "production": production,
            "sales": sales,
            "exports": exports,
            "revenue": revenue,
            "wage_bill": wage_bill,
            "investment": investment,
            "profit": profit,
            "corporate_tax": corporate_tax,
        }
        government = {
            "observation": global_obs.unsqueeze(1),
            "action_mask": self._masks["government"].expand(E, 1, -1),
            "income_tax_rate": before.income_tax.unsqueeze(1),
            "corporate_tax_rate": before.corporate_tax.unsqueeze(1),
            "revenue": tax_revenue.unsqueeze(1),
            "welfare": welfare.unsqueeze(1),
        }
        done = (after.time >= self.config.episode_length).unsqueeze(-1)
        out = {
            "global_observation": global_obs,
            "consumer": TensorDict(consumer, batch_size=(E, C)),
            "firm": TensorDict(firm, batch_size=(E, F)),
            "government": TensorDict(government, batch_size=(E, 1)),
            "done": done,
            "terminated": done.clone(),
        }
        if outcome is not None:
            out["consumer"]["reward"] = outcome.consumer_reward.unsqueeze(-1)
            out["firm"]["reward"] = outcome.firm_reward.unsqueeze(-1)
            out["government"]["reward"] = welfare.view(E, 1, 1)
        return TensorDict(out, batch_size=(E,), device=self.device)


def _uniform_allowed(mask: torch.Tensor, batch_shape: tuple[int, ...]) -> torch.Tensor:
    """One uniform draw among the True entries of each row of `mask`, for every batch element.

    The draw is a rank among the allowed entries. When every row allows a prefix of its choices
    (no curriculum mask, only the consumer heads' padding), the rank is the action itself, so the
    lookup table, the costliest part for 100 consumers x 12 heads, is skipped; the random numbers
    and the result are the same either way.
    """
    counts = mask.sum(-1)
    uniform = torch.rand(*batch_shape, *counts.shape, device=mask.device)
    rank = uniform.mul_(counts).long().clamp_max_(counts - 1)
    if torch.equal(mask, torch.arange(mask.shape[-1], device=mask.device) < counts.unsqueeze(-1)):
        return rank
    allowed_first = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True)
    table = allowed_first.expand(*batch_shape, *allowed_first.shape)
    return table.gather(-1, rank.unsqueeze(-1)).squeeze(-1)


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ValueError(f"group={group!r} is invalid; allowed: {' | '.join(GROUPS)}")
