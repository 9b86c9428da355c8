"""The Python half of the kernel backends, shared by the CUDA build and the host (CPU) build.

Argument checks, output allocation and the assembly of EconomyState / StepOutcome / observations live
here once, so the host build that the tests run on a CPU exercises the same Python code as the CUDA
backend; subclasses only differ in how a launch is issued (`_launch_*`) and how errors are collected.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from envs.rbc.config import RBCConfig
from envs.rbc.dynamics import Decisions, EconomyParameters, EconomyState, Penalties, StepOutcome

from .layout import KernelLayout, Observations

_ERROR_TEXT = {
    1: "consumer {agent} of economy {economy}: consumption index {value} is outside the consumption grid",
    2: "consumer {agent} of economy {economy}: hours index {value} is outside the hours grid",
    3: "consumer {agent} of economy {economy}: employer index {value} is not a firm",
    4: "firm agent {agent} of economy {economy}: action {value} is outside the (price, wage) grid",
    5: "government of economy {economy}: action {value} is outside the (income, corporate) tax grid",
}


class ActionIndexError(ValueError):
    """An action index given to a kernel was outside its grid; the kernel clamped it and carried on."""


def describe_error(code: int, economy: int, agent: int, value: int) -> str:
    template = _ERROR_TEXT.get(code, "unknown kernel error code {code} (economy {economy}, agent {agent})")
    return template.format(code=code, economy=economy, agent=agent, value=value)


class KernelBackend:
    """Step and reset of `num_envs` economies by the kernels of `gpu/kernels`, on torch tensors in place.

    Also callable with the signature of `envs.rbc.dynamics.step_economy`, so it can replace it one for one.
    """

    def __init__(self, config: RBCConfig, device: torch.device):
        self.config = config
        self.device = torch.device(device)
        self.layout = KernelLayout(config)
        self._blob = torch.frombuffer(bytearray(self.layout.blob), dtype=torch.uint8).to(self.device)
        self._error = torch.zeros(4, dtype=torch.int32, device=self.device)
        self._trusted_state: EconomyState | None = None

    # ------------------------------------------------------------------ public API
    def reset(
        self,
        current: EconomyState | None,
        mask: Tensor | None = None,
        anneal: float = 1.0,
        n_envs: int | None = None,
    ) -> tuple[EconomyState, Observations]:
        """Initial state where `mask` (E,) is true (everywhere without a mask), `current` elsewhere."""
        if mask is None:
            if n_envs is None:
                if current is None:
                    raise ValueError("a full reset needs the current state or n_envs for the number of economies")
                n_envs = current.price.shape[0]
            state_pointers = [0] * len(EconomyState._fields)
            mask_pointer = 0
        else:
            mask = mask.reshape(-1).to(device=self.device, dtype=torch.bool).contiguous()
            n_envs = mask.shape[0]
            if current is None:
                raise ValueError("a partial reset needs the current state")
            dense_state = self._dense_state(current, n_envs)
            state_pointers = [t.data_ptr() for t in dense_state]
            mask_pointer = mask.data_ptr()
        self._poll_errors()
        out = self.layout.allocate(n_envs, self.device, step=False, observations=True)
        self._launch_reset(n_envs, state_pointers, mask_pointer, float(anneal), out.pointers())
        state = out.state()
        self._trusted_state = state
        return state, out.observations

    def step(
        self,
        state: EconomyState,
        consumer_action: Tensor,
        firm_action: Tensor,
        government_action: Tensor,
        penalties: Penalties,
    ) -> tuple[EconomyState, StepOutcome, Tensor, Observations]:
        """One step from grid indices: next state, outcome, decoded hours (E, C), next observations."""
        n_envs = state.price.shape[0]
        dense_state = self._dense_state(state, n_envs)
        C, F, H = self.layout.n_consumers, self.layout.n_firms, self.layout.n_heads
        actions = (
            self._index_tensor(consumer_action, (n_envs, C, H), "consumer"),
            self._index_tensor(firm_action, (n_envs, F), "firm"),
            self._index_tensor(government_action.reshape(n_envs), (n_envs,), "government"),
        )
        out = self.layout.allocate(n_envs, self.device, step=True, observations=True)
        self._launch_step_indexed(
            n_envs,
            [t.data_ptr() for t in dense_state],
            [a.data_ptr() for a in actions],
            _penalty_pair(penalties),
            out.pointers(),
        )
        next_state = out.state(theta=state.theta)
        self._trusted_state = next_state
        return next_state, out.outcome(), out.named["hours"], out.observations

    def step_decisions(
        self, state: EconomyState, decisions: Decisions, penalties: Penalties, observations: bool = False
    ) -> tuple[EconomyState, StepOutcome] | tuple[EconomyState, StepOutcome, Observations]:
        """One step from decoded decisions, as `step_economy` takes them; optionally the next observations."""
        n_envs = state.price.shape[0]
        dense_state = self._dense_state(state, n_envs)
        C, F = self.layout.n_consumers, self.layout.n_firms
        floats = (
            self._float_tensor(decisions.attempted_consumption, (n_envs, C, F), "attempted_consumption"),
            self._float_tensor(decisions.hours, (n_envs, C), "hours"),
            self._float_tensor(decisions.chosen_price, (n_envs, F), "chosen_price"),
            self._float_tensor(decisions.chosen_wage, (n_envs, F), "chosen_wage"),
            self._float_tensor(decisions.chosen_income_tax.reshape(n_envs), (n_envs,), "chosen_income_tax"),
            self._float_tensor(decisions.chosen_corporate_tax.reshape(n_envs), (n_envs,), "chosen_corporate_tax"),
        )
        employer = self._index_tensor(decisions.employer, (n_envs, C), "employer")
        out = self.layout.allocate(n_envs, self.device, step=True, observations=observations)
        self._launch_step_decoded(
            n_envs,
            [t.data_ptr() for t in dense_state],
            [t.data_ptr() for t in floats],
            employer.data_ptr(),
            _penalty_pair(penalties),
            out.pointers(),
        )
        next_state = out.state(theta=state.theta)
        self._trusted_state = next_state
        if observations:
            return next_state, out.outcome(), out.observations
        return next_state, out.outcome()

    def __call__(
        self, params: EconomyParameters, state: EconomyState, decisions: Decisions, penalties: Penalties
    ) -> tuple[EconomyState, StepOutcome]:
        """`step_economy`'s signature; `params` must describe the configuration this backend was built for."""
        if params.n_consumers != self.layout.n_consumers or params.n_firms != self.layout.n_firms:
            raise ValueError(
                f"parameters for {params.n_consumers} consumers / {params.n_firms} firms given to a kernel "
                f"backend built for {self.layout.n_consumers} / {self.layout.n_firms}"
            )
        return self.step_decisions(state, decisions, penalties)

    def check_errors(self) -> None:
        """Raise ActionIndexError for an invalid action index seen since the last check (waits for the device)."""
        code, economy, agent, value = (int(v) for v in self._error.tolist())
        if code:
            self._error.zero_()
            raise ActionIndexError(describe_error(code, economy, agent, value))

    # ------------------------------------------------------------------ subclass hooks
    def _launch_step_indexed(
        self, n_envs: int, state: Sequence[int], actions: Sequence[int], penalties, outputs: Sequence[int]
    ) -> None:
        raise NotImplementedError

    def _launch_step_decoded(
        self,
        n_envs: int,
        state: Sequence[int],
        decisions: Sequence[int],
        employer: int,
        penalties,
        outputs: Sequence[int],
    ) -> None:
        raise NotImplementedError

    def _launch_reset(
        self, n_envs: int, state: Sequence[int], mask: int, anneal: float, outputs: Sequence[int]
    ) -> None:
        raise NotImplementedError

    def _poll_errors(self) -> None:
        """Called at every reset; the default checks synchronously."""
        self.check_errors()

    # ------------------------------------------------------------------ argument checks
    def _dense_state(self, state: EconomyState, n_envs: int) -> list[Tensor]:
        """The state's tensors as dense float32 on the device, in EconomyState order.

        Callers keep the returned list alive until the launch is queued: a converted copy freed before
        that could be handed out again by torch's allocator as the launch's output buffer.
        """
        # A state this backend produced is known to be dense float32 on the device: skip the checks.
        if state is self._trusted_state:
            return list(state)
        C, F = self.layout.n_consumers, self.layout.n_firms
        shapes = {
            "price": (n_envs, F),
            "wage": (n_envs, F),
            "inventory": (n_envs, F),
            "overdemanded": (n_envs, F),
            "income_tax": (n_envs,),
            "corporate_tax": (n_envs,),
            "time": (n_envs,),
            "consumer_budget": (n_envs, C),
            "firm_budget": (n_envs, F),
            "capital": (n_envs, F),
            "theta": (n_envs, C),
        }
        return [self._float_tensor(getattr(state, name), shape, f"state.{name}") for name, shape in shapes.items()]

    def _float_tensor(self, tensor: Tensor, shape: tuple[int, ...], name: str) -> Tensor:
        return self._dense(tensor, shape, torch.float32, name)

    def _index_tensor(self, tensor: Tensor, shape: tuple[int, ...], name: str) -> Tensor:
        if tensor.is_floating_point():
            raise TypeError(f"{name} action indices must be integers, got dtype={tensor.dtype}")
        return self._dense(tensor, shape, torch.int64, name)

    def _dense(self, tensor: Tensor, shape: tuple[int, ...], dtype: torch.dtype, name: str) -> Tensor:
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
        if tensor.device != self.device:
            raise ValueError(f"{name} is on {tensor.device}, but this kernel backend runs on {self.device}")
        return tensor.to(dtype).contiguous()


def _penalty_pair(penalties: Penalties) -> tuple[float, float]:
    return float(penalties.consumer), float(penalties.firm)
