"""The step backend: the one seam through which another implementation of the step plugs into RBCEnv.

The torch functions of `dynamics.py` are the reference and need no backend object (`backend="torch"`).
Any other implementation, such as the fused CUDA kernels of the `gpu` package, implements
`StepBackend` and is found by name: registered in this process with `register_backend`, or declared
by an installed distribution under the entry-point group `dge_marl.step_backends`
(pyproject.toml declares `cuda = "gpu.backend:CudaBackend"`). So the economy never imports an
implementation: a backend depends on `envs`, never the other way round.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from .config import RBCConfig
from .dynamics import EconomyState, Penalties, StepOutcome

REFERENCE = "torch"
ENTRY_POINT_GROUP = "dge_marl.step_backends"


class EncodedObservations(NamedTuple):
    """Observations of one state as `ObservationEncoder` lays them out, when a backend encodes them itself."""

    global_observation: Tensor  # (E, global_dim)
    consumer: Tensor  # (E, C, consumer_dim)
    firm: Tensor  # (E, F, firm_dim)


@runtime_checkable
class StepBackend(Protocol):
    """What RBCEnv needs from an implementation of reset and step other than the torch reference.

    Both calls return the economies' next state in `EconomyState`'s layout and that state's encoded
    observations, so the environment only lays results out as TensorDicts. Results must equal the
    reference's (`dynamics.initial_state`, `reset_where`, `decode_actions` + `step_economy`, and
    `ObservationEncoder`) within float32 tolerance.
    """

    device: torch.device

    def reset(
        self, current: EconomyState | None, mask: Tensor | None, anneal: float
    ) -> tuple[EconomyState, EncodedObservations]:
        """The initial state where `mask` (E,) is true (everywhere without a mask), `current` elsewhere."""
        ...

    def step(
        self,
        state: EconomyState,
        consumer_action: Tensor,
        firm_action: Tensor,
        government_action: Tensor,
        penalties: Penalties,
    ) -> tuple[EconomyState, StepOutcome, Tensor, EncodedObservations]:
        """One step from action indices: next state, outcome, consumers' hours (E, C), next observations."""
        ...


BackendFactory = Callable[[RBCConfig, "torch.device | str"], StepBackend]

_registered: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make `RBCEnv(..., backend=name)` build its backend with `factory(config, device)` in this process."""
    if name == REFERENCE:
        raise ValueError(f"backend name {REFERENCE!r} is the torch reference and cannot be replaced")
    _registered[name] = factory


def _declared() -> dict[str, object]:
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> tuple[str, ...]:
    """Every backend name RBCEnv accepts here: the reference, then registered and installed ones."""
    return (REFERENCE, *sorted(set(_registered) | set(_declared())))


def resolve_backend(name: str, config: RBCConfig, device: torch.device | str) -> StepBackend | None:
    """None for the torch reference; otherwise the named backend, built for `config` on `device`.

    The implementation is imported only here, when asked for, so an optional backend's dependencies
    (cuda-python for "cuda") are needed only by those who choose it; its own errors (a missing
    driver, say) reach the caller unchanged.
    """
    if name == REFERENCE:
        return None
    factory = _registered.get(name)
    if factory is None:
        declared = _declared()
        if name not in declared:
            raise ValueError(
                f"backend={name!r} is invalid; allowed: {' | '.join(available_backends())} "
                f"(other backends register under the entry-point group {ENTRY_POINT_GROUP!r})"
            )
        factory = declared[name].load()
    return factory(config, device)
