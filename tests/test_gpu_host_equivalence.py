"""The CUDA kernels' code, built for the host, against the torch reference (no GPU needed).

`gpu/kernels/rbc_step.cuh` is compiled by the system C++ compiler into a shared library that runs the
kernels' phase functions thread by thread (gpu/host.py); `HostBackend` drives it through the same Python
code as the CUDA backend. Here it is compared with `decode_actions` + `step_economy` and the
`ObservationEncoder` on random states and actions and along trajectories of both economies, both
observation encodings and several sizes, including the paper's 100 consumers / 10 firms.

Tolerance (float32). Both sides round every operation to float32 (unit roundoff u = 2^-24 ~ 6e-8).
The longest dependency chain in a step is a firm's sum over its consumers (C <= 100 terms) followed by
about 20 further operations, and the libm functions (pow, log1p) differ by at most a few ulps between
glibc/torch and the kernel. The standard forward-error bound for such a chain is about n*u relative to
the magnitude of the *operands* (n ~ 120 here), not of the result: a result that is a difference of
large numbers (an inventory that is sold out, a budget spent to zero, a profit near zero) may carry an
absolute error of a few ulps of the operands. So every quantity is compared as

    |kernel - torch| <= TOL * S,    TOL = 2^-16 ~ 1.5e-5 (= 256 u, twice the bound)

with S the magnitude of the operands that produce it (computed below from the reference, per element:
e.g. max(stock, production) for the next inventory, max(revenue, wage bill) for profits). A logic
error changes results by O(1) relative to S and cannot hide below 1.5e-5; the largest ratio observed
in these tests is far smaller (see `test_tolerance_has_margin`).

Observations: the digit encoding (nested remainders) is discontinuous, so ulp-level differences in a
state can flip a feature between ~0 and ~1; the encoders are therefore compared on the *same* state
(the kernel's next state through the torch encoder), where they agree exactly except for symlog's
log1p (a few ulps), and the states themselves are compared with the tolerance above.

Discrete outputs (over-demand flags, time, prices, wages and tax rates chosen) must match exactly.
"""

from __future__ import annotations

import math
import zlib

import pytest
import torch

from envs.rbc.config import RBCConfig
from envs.rbc.dynamics import (
    EconomyParameters,
    EconomyState,
    Penalties,
    StepOutcome,
    decode_actions,
    initial_state,
    reset_where,
    step_economy,
)
from envs.rbc.observations import ObservationEncoder

from backend_support import assert_same_step_outputs

TOL = 2.0**-16
ENCODER_RTOL, ENCODER_ATOL = 2.0**-20, 2.0**-24  # same state through two encoders: symlog's log1p only

host = pytest.importorskip("gpu.host")
from gpu.engine import ActionIndexError  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _host_library():
    try:
        host.load_host_library()
    except host.HostBuildError as err:
        pytest.skip(f"host build of the kernels unavailable: {err}")


ECONOMIES = [
    pytest.param(dict(n_consumers=100, n_firms=10), id="paper-100x10"),
    pytest.param(dict(n_consumers=7, n_firms=3), id="small-7x3"),
    pytest.param(dict(n_consumers=1, n_firms=1), id="tiny-1x1"),
]
ECONOMY_KINDS = [pytest.param(True, id="open"), pytest.param(False, id="closed")]
ENCODINGS = ["digits", "symlog"]

_observed_ratio = {"max": 0.0}


# ---------------------------------------------------------------------------------------------- inputs
def random_state(config: RBCConfig, n_envs: int, gen: torch.Generator) -> EconomyState:
    """States well beyond what an episode reaches: empty and huge stocks, negative firm budgets, any time."""
    E, C, F = n_envs, config.n_consumers, config.n_firms

    def pick(grid, shape):
        return torch.tensor(grid, dtype=torch.float32)[torch.randint(len(grid), shape, generator=gen)]

    def skewed(shape, high, zero_fraction):
        values = torch.rand(shape, generator=gen) ** 3 * high
        return torch.where(torch.rand(shape, generator=gen) < zero_fraction, torch.zeros(shape), values)

    params = EconomyParameters.from_config(config)
    anneal = torch.rand((E, 1), generator=gen)
    return EconomyState(
        price=pick(config.price_grid, (E, F)),
        wage=pick(config.wage_grid, (E, F)),
        inventory=skewed((E, F), 3000.0, 0.3),
        overdemanded=(torch.rand((E, F), generator=gen) < 0.5).float(),
        income_tax=pick(config.income_tax_grid, (E,)),
        corporate_tax=pick(config.corporate_tax_grid, (E,)),
        time=torch.randint(config.episode_length, (E,), generator=gen).float(),
        consumer_budget=skewed((E, C), 1e5, 0.2),
        firm_budget=(torch.rand((E, F), generator=gen) * 2.0 - 0.6) * 5e6,
        capital=1e3 + torch.rand((E, F), generator=gen) ** 2 * 1e6,
        theta=(params.base_theta * anneal).contiguous(),
    )


def random_actions(config: RBCConfig, n_envs: int, gen: torch.Generator):
    E, C, F = n_envs, config.n_consumers, config.n_firms
    consumer = torch.stack(
        [torch.randint(n, (E, C), generator=gen) for n in config.consumer_head_sizes], dim=-1
    )
    firm = torch.randint(config.n_firm_actions, (E, F), generator=gen)
    government = torch.randint(config.n_government_actions, (E, 1), generator=gen)
    return consumer, firm, government


# ---------------------------------------------------------------------------------------------- tolerance
def operand_scales(config, state, decisions, ref: StepOutcome, nxt: EconomyState, penalties: Penalties):
    """Per element, the magnitude of the operands each compared quantity is computed from (float64)."""
    d = lambda t: t.double().abs()  # noqa: E731
    last = (state.time.double() + 1 >= config.episode_length).unsqueeze(-1).double()
    revenue, wage_bill = d(ref.revenue), d(ref.wage_bill)
    firm_flow = torch.maximum(revenue, wage_bill)  # operating income = revenue - wage bill
    if config.investment_rule == "budget":
        firm_flow = torch.maximum(firm_flow, config.investment_fraction * d(state.firm_budget))
    firm_budget = torch.maximum(d(state.firm_budget), firm_flow)
    # The no-Ponzi term multiplies the next budget, whose own error is relative to `firm_budget`.
    firm_reward = firm_flow + last * penalties.firm * firm_budget / config.firm_penalty_scale
    spending = (ref.consumption.double() * state.price.double().unsqueeze(1)).sum(-1)
    consumer_budget = torch.stack(
        [d(state.consumer_budget), d(nxt.consumer_budget), spending, d(ref.labor_income), d(ref.transfer)]
    ).amax(0)
    # u(c) = ((c + 1)^(1 - eta) - 1) / (1 - eta) subtracts 1 from a number >= 1: its operands are that size.
    utility = (((ref.consumption.double() + 1) ** (1 - config.crra_eta) + 1) / (1 - config.crra_eta)).sum(-1)
    disutility = config.labor_disutility_scale * d(state.theta) * d(decisions.hours)
    consumer_reward = utility + disutility + last * penalties.consumer * consumer_budget / config.consumer_penalty_scale
    goods = torch.stack([d(state.inventory), d(ref.production), d(ref.sales), d(ref.exports)]).amax(0)
    return {
        "inventory": goods,
        "sales": d(ref.sales),
        "exports": goods,
        "production": d(ref.production),
        "consumption": d(ref.consumption),
        "revenue": revenue,
        "wage_bill": wage_bill,
        "investment": firm_flow,
        "profit": firm_flow,
        "corporate_tax_paid": firm_flow,
        "firm_reward": firm_reward,
        "firm_budget": firm_budget,
        "capital": torch.maximum(d(state.capital), firm_flow),
        "labor_income": d(ref.labor_income),
        "income_tax_paid": d(ref.income_tax_paid),
        "transfer": d(ref.transfer),
        "tax_revenue": d(ref.tax_revenue),
        "consumer_budget": consumer_budget,
        "consumer_reward": consumer_reward,
        "welfare": consumer_reward.sum(-1) + config.welfare_firm_weight * firm_reward.sum(-1),
    }


EXACT = ("price", "wage", "overdemanded", "income_tax", "corporate_tax", "time", "theta")


def assert_close_to_reference(name: str, kernel: torch.Tensor, reference: torch.Tensor, scale: torch.Tensor | None):
    assert kernel.shape == reference.shape, f"{name}: shape {tuple(kernel.shape)} != {tuple(reference.shape)}"
    assert kernel.dtype == reference.dtype == torch.float32, f"{name}: dtype {kernel.dtype} / {reference.dtype}"
    if name in EXACT:
        mismatch = kernel != reference
        assert not mismatch.any(), (
            f"{name}: {int(mismatch.sum())} entries differ, e.g. {kernel[mismatch][:3]} vs {reference[mismatch][:3]}"
        )
        return
    error = (kernel.double() - reference.double()).abs()
    bound = TOL * scale + 1e-30
    ratio = float((error / (scale + 1e-30)).max()) if error.numel() else 0.0
    _observed_ratio["max"] = max(_observed_ratio["max"], ratio)
    bad = error > bound
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise AssertionError(
            f"{name}{list(index)}: kernel {kernel[index].item()!r} vs torch {reference[index].item()!r}, "
            f"|diff| {error[index].item():.3g} > {TOL:.3g} * operand scale {scale[index].item():.3g} "
            f"({int(bad.sum())} of {bad.numel()} entries)"
        )


def compare_step(config, state, actions, penalties, backend, encoder):
    """One step of the kernel code and of the torch reference from the same state; returns the kernel's."""
    params = EconomyParameters.from_config(config, state.price.device)
    decisions = decode_actions(params, *actions)
    ref_state, ref_out = step_economy(params, state, decisions, penalties)
    k_state, k_out, k_hours, k_obs = backend.step(state, *actions, penalties)
    scales = operand_scales(config, state, decisions, ref_out, ref_state, penalties)
    for name in EconomyState._fields:
        assert_close_to_reference(name, getattr(k_state, name), getattr(ref_state, name), scales.get(name))
    for name in StepOutcome._fields:
        assert_close_to_reference(name, getattr(k_out, name), getattr(ref_out, name), scales.get(name))
    assert torch.equal(k_hours, decisions.hours)
    assert_encoded(encoder, k_state, k_obs)
    return k_state, k_out


def assert_encoded(encoder: ObservationEncoder, state: EconomyState, observations) -> None:
    """The kernel's observations equal the torch encoder applied to the same state."""
    torch.testing.assert_close(
        observations.global_observation, encoder.global_observation(state), rtol=ENCODER_RTOL, atol=ENCODER_ATOL
    )
    torch.testing.assert_close(
        observations.consumer, encoder.consumer_observation(state), rtol=ENCODER_RTOL, atol=ENCODER_ATOL
    )
    torch.testing.assert_close(observations.firm, encoder.firm_observation(state), rtol=ENCODER_RTOL, atol=ENCODER_ATOL)


def make(
    economy: dict, open_economy: bool, encoding: str, device: str = "cpu", **extra
) -> tuple[RBCConfig, ObservationEncoder]:
    config = RBCConfig(open_economy=open_economy, observation_encoding=encoding, **economy, **extra)
    return config, ObservationEncoder(config, EconomyParameters.from_config(config, device))


# ---------------------------------------------------------------------------------------------- contract
def test_header_and_python_agree_on_the_contract():
    from gpu import layout

    assert host.slot_names(0) == layout.FIRM_SLOTS
    assert host.slot_names(1) == layout.STEP_CONSUMER_SLOTS
    assert host.slot_names(2) == layout.RESET_CONSUMER_SLOTS
    assert host.slot_names(3) == layout.ECONOMY_SLOTS
    library = host.load_host_library()
    for C, F in [(1, 1), (7, 3), (100, 10), (1000, 50)]:
        assert library.rbc_host_shared_floats(C, F) == layout.shared_floats(C, F)
    assert library.rbc_host_max_block_threads() == layout.MAX_BLOCK_THREADS
    layout.check_reference_fields()  # every field of EconomyState / StepOutcome is produced by the kernels


def test_host_build_is_cached(tmp_path):
    first = host.build_host_library(directory=tmp_path)
    stamp = first.stat().st_mtime_ns
    again = host.build_host_library(directory=tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp
    assert tmp_path in first.parents


# ---------------------------------------------------------------------------------------------- steps
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("open_economy", ECONOMY_KINDS)
@pytest.mark.parametrize("economy", ECONOMIES)
def test_random_states_one_step(economy, open_economy, encoding):
    config, encoder = make(economy, open_economy, encoding)
    backend = host.HostBackend(config)
    gen = torch.Generator().manual_seed(zlib.crc32(f"{economy}{open_economy}{encoding}".encode()))
    for _ in range(3):
        state = random_state(config, 32, gen)
        compare_step(config, state, random_actions(config, 32, gen), Penalties(), backend, encoder)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("open_economy", ECONOMY_KINDS)
@pytest.mark.parametrize("economy", ECONOMIES)
def test_trajectories_with_partial_resets(economy, open_economy, encoding):
    """Three episodes of 16 economies; each step starts both sides from the kernel's own state, so the
    kernel's outputs are fed back exactly as in the environment, and ends staggered by partial resets."""
    config, encoder = make(economy, open_economy, encoding)
    params = EconomyParameters.from_config(config)
    backend = host.HostBackend(config)
    gen = torch.Generator().manual_seed(7 + economy["n_firms"])
    E = 16
    anneal = 0.75
    state, observations = backend.reset(None, anneal=anneal, n_envs=E)
    reference = initial_state(params, E, anneal, torch.device("cpu"))
    for name in EconomyState._fields:
        assert torch.equal(getattr(state, name), getattr(reference, name)), name
    assert_encoded(encoder, state, observations)
    for t in range(3 * config.episode_length):
        state, _ = compare_step(config, state, random_actions(config, E, gen), Penalties(), backend, encoder)
        mask = (state.time >= config.episode_length) | (torch.rand(E, generator=gen) < 0.1)
        if mask.any():
            expected = reset_where(mask, initial_state(params, E, anneal, torch.device("cpu")), state)
            state, observations = backend.reset(state, mask, anneal)
            for name in EconomyState._fields:
                assert torch.equal(getattr(state, name), getattr(expected, name)), name
            assert_encoded(encoder, state, observations)


@pytest.mark.parametrize(
    "variant",
    [
        dict(investment_rule="budget"),
        dict(interest_rate=0.05),
        dict(consumer_budget_guard=0.01),
        dict(labor_floor=300.0),
        dict(export_price_inclusive=False),
        dict(welfare="consumer_only"),
        dict(productivity=0.05, crra_eta=0.5, labor_disutility_scale=1.0, n_digits=6),
    ],
    ids=lambda v: ",".join(v),
)
def test_config_variants_and_no_ponzi_penalties(variant):
    config, encoder = make(dict(n_consumers=20, n_firms=4), True, "digits", **variant)
    backend = host.HostBackend(config)
    gen = torch.Generator().manual_seed(11)
    penalties = Penalties(consumer=0.5, firm=2.0)
    for _ in range(3):
        state = random_state(config, 24, gen)
        state = state._replace(time=torch.full_like(state.time, config.episode_length - 1.0))  # penalty step
        compare_step(config, state, random_actions(config, 24, gen), penalties, backend, encoder)


def test_decoded_entry_matches_indexed_entry_and_reference():
    """The drop-in `step_economy` replacement (decoded decisions) computes exactly what the fused step does."""
    config, _ = make(dict(n_consumers=100, n_firms=10), True, "symlog")
    params = EconomyParameters.from_config(config)
    backend = host.HostBackend(config)
    gen = torch.Generator().manual_seed(3)
    state = random_state(config, 8, gen)
    actions = random_actions(config, 8, gen)
    decisions = decode_actions(params, *actions)
    fused_state, fused_out, _, _ = backend.step(state, *actions, Penalties())
    state_d, out_d = backend(params, state, decisions, Penalties())
    for a, b in zip((*fused_state, *fused_out), (*state_d, *out_d)):
        assert torch.equal(a, b)


def test_thread_assignment_does_not_matter():
    """Fewer simulated threads than agents (striding) and reversed thread order give identical bits,
    so no phase reads what another thread of the same phase writes (a data race on the device)."""
    config, _ = make(dict(n_consumers=100, n_firms=10), True, "digits")
    gen = torch.Generator().manual_seed(5)
    state = random_state(config, 8, gen)
    actions = random_actions(config, 8, gen)
    results = []
    for n_threads, reverse in [(None, False), (None, True), (32, False), (32, True), (1, False)]:
        backend = host.HostBackend(config, n_threads=n_threads, reverse=reverse)
        nxt, out, hours, obs = backend.step(state, *actions, Penalties())
        results.append(torch.cat([t.reshape(-1) for t in (*nxt, *out, hours, *obs)]))
    for other in results[1:]:
        assert torch.equal(results[0], other)


def test_outputs_are_views_of_one_allocation_and_inputs_are_untouched():
    config, _ = make(dict(n_consumers=10, n_firms=3), True, "digits")
    backend = host.HostBackend(config)
    gen = torch.Generator().manual_seed(9)
    state = random_state(config, 4, gen)
    before = [t.clone() for t in state]
    nxt, out, hours, obs = backend.step(state, *random_actions(config, 4, gen), Penalties())
    storages = {t.untyped_storage().data_ptr() for t in (*nxt[:-1], *out, hours, *obs)}
    assert len(storages) == 1, "every output should be a view of the step's single allocation"
    assert nxt.theta is state.theta  # passed through, not copied
    for a, b in zip(before, state):
        assert torch.equal(a, b)


def test_invalid_action_index_is_reported():
    config, _ = make(dict(n_consumers=5, n_firms=2), True, "digits")
    backend = host.HostBackend(config)
    gen = torch.Generator().manual_seed(1)
    state = random_state(config, 3, gen)
    consumer, firm, government = random_actions(config, 3, gen)
    consumer[1, 4, config.n_firms + 1] = 7  # employer 7 of 2 firms
    with pytest.raises(ActionIndexError, match="consumer 4 of economy 1: employer index 7"):
        backend.step(state, consumer, firm, government, Penalties())
    # the step after an error starts clean
    consumer[1, 4, config.n_firms + 1] = 1
    backend.step(state, consumer, firm, government, Penalties())


def test_env_with_kernel_backend_gives_the_reference_output():
    """RBCEnv's kernel path (fused reset/step/observations) lays out the same TensorDict as the torch path."""
    from envs import RBCEnv

    config = RBCConfig(n_consumers=12, n_firms=4, observation_encoding="symlog")
    reference = RBCEnv(config, num_envs=6, seed=0)
    kernel = RBCEnv(config, num_envs=6, seed=0)
    kernel._kernels = host.HostBackend(config)  # what backend="cuda" installs, built for the host
    out_ref, out_kernel = reference.reset(), kernel.reset()
    torch.manual_seed(0)
    for t in range(2 * config.episode_length):
        action = reference.rand_action()
        out_ref = reference.step(action.clone())
        out_kernel = kernel.step(action.clone())
        assert_same_step_outputs(out_kernel, out_ref)
        if out_ref["next", "done"].all():
            reference.reset()
            kernel.reset()


def test_tolerance_has_margin():
    """Runs last in this module: the worst error seen, relative to its operand scale, is well below TOL."""
    if _observed_ratio["max"] == 0.0:
        pytest.skip("no comparison ran before this test")
    assert _observed_ratio["max"] < TOL / 4, f"worst relative error {_observed_ratio['max']:.3g} vs TOL {TOL:.3g}"
    assert math.isfinite(_observed_ratio["max"])
