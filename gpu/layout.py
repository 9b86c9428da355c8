"""The contract between the kernels and Python: parameter block, output slots, scratch size.

Everything here mirrors `gpu/kernels/rbc_step.cuh` and is checked against the host build of that header
by the tests (slot names, struct size, scratch size), so a change on one side that is not made on the
other fails on a machine without a GPU too.

Outputs are grouped by shape: every per-firm quantity of a step is one slot of a single (slots, E, F)
array, every per-consumer quantity one slot of a (slots, E, C) array, every per-economy scalar one slot
of an (slots, E) array. One allocation per step holds all groups plus consumption and the observations,
and the named tensors handed to the environment are views into it, so the kernel writes straight into
the tensors the caller receives.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from envs.rbc.backends import EncodedObservations
from envs.rbc.config import RBCConfig
from envs.rbc.dynamics import EconomyParameters, EconomyState, StepOutcome
from envs.rbc.observations import SYMLOG_SCALE, ObservationEncoder

ABI_VERSION = 1

FIRM_SLOTS = (
    "price",
    "wage",
    "inventory",
    "overdemanded",
    "firm_budget",
    "capital",
    "production",
    "sales",
    "exports",
    "revenue",
    "wage_bill",
    "investment",
    "profit",
    "corporate_tax_paid",
    "firm_reward",
)
STEP_CONSUMER_SLOTS = ("consumer_budget", "labor_income", "income_tax_paid", "transfer", "consumer_reward", "hours")
RESET_CONSUMER_SLOTS = ("consumer_budget", "theta")
ECONOMY_SLOTS = ("income_tax", "corporate_tax", "time", "tax_revenue", "welfare")
FIRM_STATE_SLOTS = 6  # a reset writes only these leading firm slots ...
ECONOMY_STATE_SLOTS = 3  # ... and these leading economy slots

SHARED_PER_CONSUMER = 5
SHARED_PER_FIRM = 3

# Quantities the step produces outside the slot groups: its own (E, C, F) array, and theta, which a step
# passes through unchanged (the caller's tensor is reused rather than copied).
_STATE_FIELDS = set(FIRM_SLOTS[:FIRM_STATE_SLOTS]) | set(ECONOMY_SLOTS[:ECONOMY_STATE_SLOTS]) | {
    "consumer_budget",
    "theta",
}
_OUTCOME_FIELDS = (
    set(FIRM_SLOTS[FIRM_STATE_SLOTS:])
    | set(STEP_CONSUMER_SLOTS[1:]) - {"hours"}
    | set(ECONOMY_SLOTS[ECONOMY_STATE_SLOTS:])
    | {"consumption"}
)


class KernelContractError(RuntimeError):
    """The torch reference and the kernels disagree on the fields of the state or outcome."""


def check_reference_fields() -> None:
    """Fail loudly if envs.rbc.dynamics gained or lost a field that the kernels would not fill."""
    for name, fields, covered in (
        ("EconomyState", EconomyState._fields, _STATE_FIELDS),
        ("StepOutcome", StepOutcome._fields, _OUTCOME_FIELDS),
    ):
        if set(fields) != covered:
            raise KernelContractError(
                f"envs.rbc.dynamics.{name} has fields {sorted(fields)} but the CUDA kernels produce "
                f"{sorted(covered)}; update gpu/kernels/rbc_step.cuh and gpu/layout.py together"
            )


def shared_floats(n_consumers: int, n_firms: int) -> int:
    """Floats of block-shared scratch per economy (mirrors rbc_shared_floats)."""
    return SHARED_PER_CONSUMER * n_consumers + SHARED_PER_FIRM * n_firms + 1


class RbcParams(ctypes.Structure):
    """ctypes mirror of `struct RbcParams`; only 4-byte fields, so there is no padding to disagree on."""

    _fields_ = [
        (name, ctypes.c_int32)
        for name in (
            "abi_version",
            "n_consumers",
            "n_firms",
            "n_heads",
            "episode_length",
            "n_levels",
            "n_hours",
            "n_prices",
            "n_wages",
            "n_income",
            "n_corporate",
            "encoding",
            "n_digits",
            "width",
            "global_dim",
            "consumer_obs_dim",
            "firm_obs_dim",
            "open_economy",
            "export_inclusive",
            "invest_from_budget",
            "apply_interest",
            "off_consumption_grid",
            "off_hours_grid",
            "off_price_grid",
            "off_wage_grid",
            "off_income_grid",
            "off_corporate_grid",
            "off_alpha",
            "off_initial_capital",
            "off_base_theta",
            "moduli_byte_offset",
        )
    ] + [
        (name, ctypes.c_float)
        for name in (
            "productivity",
            "one_minus_eta",
            "labor_disutility_scale",
            "investment_fraction",
            "interest_factor",
            "labor_floor",
            "export_min_price",
            "export_quantity_cap",
            "consumer_budget_guard",
            "welfare_firm_weight",
            "consumer_penalty_scale",
            "firm_penalty_scale",
            "initial_price",
            "initial_wage",
            "initial_inventory",
            "initial_income_tax",
            "initial_corporate_tax",
            "initial_consumer_budget",
            "initial_firm_budget",
            "price_scale",
            "wage_scale",
            "time_scale",
            "theta_scale",
            "capital_scale",
            "symlog_scale",
        )
    ]


def build_params_blob(config: RBCConfig) -> bytes:
    """The parameter block of one configuration, from the same objects the torch reference uses.

    Scalars are rounded to float32 exactly where torch would round a Python float meeting a float32
    tensor, and derived scalars (1 - eta, 1 + r) are formed in double first, as in the reference.
    """
    params = EconomyParameters.from_config(config, "cpu")
    encoder = ObservationEncoder(config, params)
    tables = {
        "consumption_grid": params.consumption_grid,
        "hours_grid": params.hours_grid,
        "price_grid": params.price_grid,
        "wage_grid": params.wage_grid,
        "income_grid": params.income_tax_grid,
        "corporate_grid": params.corporate_tax_grid,
        "alpha": params.alpha,
        "initial_capital": params.initial_capital,
        "base_theta": params.base_theta,
    }
    offsets: dict[str, int] = {}
    pieces = []
    cursor = 0
    for name, values in tables.items():
        array = values.detach().cpu().numpy().astype(np.float32).reshape(-1)
        offsets[f"off_{name}"] = cursor
        pieces.append(array)
        cursor += array.size
    float_table = np.concatenate(pieces).astype(np.float32)
    head = ctypes.sizeof(RbcParams) + float_table.nbytes
    moduli_byte_offset = (head + 7) // 8 * 8
    moduli = encoder.moduli.detach().cpu().numpy().astype(np.float64)

    header = RbcParams(
        abi_version=ABI_VERSION,
        n_consumers=config.n_consumers,
        n_firms=config.n_firms,
        n_heads=config.n_consumer_heads,
        episode_length=config.episode_length,
        n_levels=len(config.consumption_grid),
        n_hours=len(config.hours_grid),
        n_prices=len(config.price_grid),
        n_wages=len(config.wage_grid),
        n_income=len(config.income_tax_grid),
        n_corporate=len(config.corporate_tax_grid),
        encoding=0 if config.observation_encoding == "digits" else 1,
        n_digits=config.n_digits,
        width=encoder.width,
        global_dim=encoder.global_dim,
        consumer_obs_dim=encoder.consumer_dim,
        firm_obs_dim=encoder.firm_dim,
        open_economy=int(params.open_economy),
        export_inclusive=int(params.export_price_inclusive),
        invest_from_budget=int(params.invest_from_budget),
        apply_interest=int(params.interest_rate != 0.0),
        moduli_byte_offset=moduli_byte_offset,
        productivity=params.productivity,
        one_minus_eta=1.0 - params.crra_eta,
        labor_disutility_scale=params.labor_disutility_scale,
        investment_fraction=params.investment_fraction,
        interest_factor=1.0 + params.interest_rate,
        labor_floor=params.labor_floor,
        export_min_price=params.export_min_price,
        export_quantity_cap=params.export_quantity_cap,
        consumer_budget_guard=params.consumer_budget_guard,
        welfare_firm_weight=params.welfare_firm_weight,
        consumer_penalty_scale=params.consumer_penalty_scale,
        firm_penalty_scale=params.firm_penalty_scale,
        initial_price=params.initial_price,
        initial_wage=params.initial_wage,
        initial_inventory=params.initial_inventory,
        initial_income_tax=params.initial_income_tax,
        initial_corporate_tax=params.initial_corporate_tax,
        initial_consumer_budget=params.initial_consumer_budget,
        initial_firm_budget=params.initial_firm_budget,
        price_scale=encoder.price_scale,
        wage_scale=encoder.wage_scale,
        time_scale=encoder.time_scale,
        theta_scale=encoder.theta_scale,
        capital_scale=encoder.capital_scale,
        symlog_scale=SYMLOG_SCALE,
        **offsets,
    )
    padding = bytes(moduli_byte_offset - head)
    return bytes(header) + float_table.tobytes() + padding + moduli.tobytes()


# The encoded observations a backend returns, in the layout envs defines for every backend.
Observations = EncodedObservations


@dataclass
class OutputBuffers:
    """One launch's outputs: the raw group arrays (for the kernel) and their named views (for the caller)."""

    firm: Tensor  # (slots, E, F)
    consumer: Tensor  # (slots, E, C)
    economy: Tensor  # (slots, E)
    consumption: Tensor | None  # (E, C, F), steps only
    observations: Observations | None
    named: dict[str, Tensor]

    def pointers(self) -> list[int]:
        """Output pointers in kernel argument order; 0 (null) for what is not computed."""
        obs = self.observations
        return [
            self.firm.data_ptr(),
            self.consumer.data_ptr(),
            self.economy.data_ptr(),
            0 if self.consumption is None else self.consumption.data_ptr(),
            0 if obs is None else obs.global_observation.data_ptr(),
            0 if obs is None else obs.consumer.data_ptr(),
            0 if obs is None else obs.firm.data_ptr(),
        ]

    def state(self, theta: Tensor | None = None) -> EconomyState:
        named = self.named if theta is None else {**self.named, "theta": theta}
        return EconomyState(**{field: named[field] for field in EconomyState._fields})

    def outcome(self) -> StepOutcome:
        return StepOutcome(**{field: self.named[field] for field in StepOutcome._fields})


class KernelLayout:
    """Sizes of one configuration and the allocation of launch outputs in that layout."""

    def __init__(self, config: RBCConfig):
        check_reference_fields()
        self.config = config
        encoder = ObservationEncoder(config, EconomyParameters.from_config(config, "cpu"))
        self.n_consumers = config.n_consumers
        self.n_firms = config.n_firms
        self.n_heads = config.n_consumer_heads
        self.global_dim = encoder.global_dim
        self.consumer_dim = encoder.consumer_dim
        self.firm_dim = encoder.firm_dim
        self.blob = build_params_blob(config)
        self.shared_floats = shared_floats(self.n_consumers, self.n_firms)

    @property
    def n_agents(self) -> int:
        return self.n_consumers + self.n_firms + 1

    def allocate(self, n_envs: int, device: torch.device, *, step: bool, observations: bool) -> OutputBuffers:
        """A single fresh allocation carved into the groups of a step (or a reset)."""
        E, C, F = n_envs, self.n_consumers, self.n_firms
        firm_slots = FIRM_SLOTS if step else FIRM_SLOTS[:FIRM_STATE_SLOTS]
        consumer_slots = STEP_CONSUMER_SLOTS if step else RESET_CONSUMER_SLOTS
        economy_slots = ECONOMY_SLOTS if step else ECONOMY_SLOTS[:ECONOMY_STATE_SLOTS]
        shapes = [(len(firm_slots), E, F), (len(consumer_slots), E, C), (len(economy_slots), E)]
        if step:
            shapes.append((E, C, F))
        if observations:
            shapes += [(E, self.global_dim), (E, C, self.consumer_dim), (E, F, self.firm_dim)]
        sizes = [int(np.prod(shape)) for shape in shapes]
        flat = torch.empty(sum(sizes), dtype=torch.float32, device=device)
        parts = [part.view(shape) for part, shape in zip(flat.split(sizes), shapes)]
        firm, consumer, economy = parts[:3]
        rest = parts[3:]
        consumption = rest.pop(0) if step else None
        obs = Observations(*rest) if observations else None
        named = dict(zip(firm_slots, firm.unbind(0)))
        named.update(zip(consumer_slots, consumer.unbind(0)))
        named.update(zip(economy_slots, economy.unbind(0)))
        if consumption is not None:
            named["consumption"] = consumption
        return OutputBuffers(firm, consumer, economy, consumption, obs, named)


MAX_BLOCK_THREADS = 256  # RBC_MAX_BLOCK_THREADS: the kernels' __launch_bounds__


def block_size(n_agents: int) -> int:
    """Threads per block: one per agent, rounded up to whole warps, capped at MAX_BLOCK_THREADS.

    Economies with more agents than that still work: each thread then strides over several agents.
    """
    return min(MAX_BLOCK_THREADS, (n_agents + 31) // 32 * 32)
