"""The CUDA backend itself: on a GPU, launches and equivalence on the device; everywhere, clean refusal.

Tests marked `requires_gpu` skip with the reason when the driver probe fails (evaluated once per
process by `gpu.backend.cuda_status`; after a failed probe nothing touches the driver again, see
docs/gpu.md). The refusal tests run where there is no GPU and check that choosing backend="cuda" fails
at once with a message naming what is missing, and never hangs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import torch

from envs import RBCConfig, RBCEnv
from envs.rbc.dynamics import EconomyParameters, EconomyState, Penalties, initial_state, reset_where, step_economy

from backend_support import assert_same_step_outputs
from conftest import ROOT

backend = pytest.importorskip("gpu.backend")
STATUS = backend.cuda_status()
requires_gpu = pytest.mark.skipif(not STATUS.ok, reason=f"needs a CUDA GPU: {STATUS.reason}")
without_gpu = pytest.mark.skipif(STATUS.ok, reason="a GPU is present: the refusal path does not apply")


# ---------------------------------------------------------------------------------------------- no GPU
@without_gpu
def test_cuda_backend_refuses_with_every_missing_piece():
    started = time.perf_counter()
    for _ in range(2):  # the second attempt is answered from the cached probe
        with pytest.raises(backend.CudaUnavailableError) as info:
            RBCEnv(RBCConfig(n_consumers=3, n_firms=2), num_envs=2, device="cuda", backend="cuda")
        message = str(info.value)
        assert message.startswith("backend='cuda' is unavailable: ")
        for problem in STATUS.problems:
            assert problem in message
    assert time.perf_counter() - started < 30


def test_cuda_backend_needs_a_cuda_device():
    with pytest.raises(backend.CudaUnavailableError, match="runs on a CUDA device, but device='cpu'"):
        RBCEnv(RBCConfig(n_consumers=3, n_firms=2), num_envs=2, device="cpu", backend="cuda")


def test_probe_in_a_fresh_process_never_hangs():
    """A fresh interpreter that asks for the CUDA backend twice either gets it or a clear error, in seconds."""
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from envs import RBCConfig, RBCEnv
        from gpu.backend import CudaUnavailableError
        for attempt in range(2):
            try:
                RBCEnv(RBCConfig(n_consumers=3, n_firms=2), num_envs=2, device="cuda", backend="cuda")
                print("available")
            except CudaUnavailableError as err:
                print("refused:", err)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1], result.stdout
    assert lines[0] == "available" or "backend='cuda' is unavailable" in lines[0]


# ---------------------------------------------------------------------------------------------- on a GPU
@pytest.fixture(scope="module")
def helpers():
    import test_gpu_host_equivalence as helpers  # random inputs, tolerance and comparison (tests/)

    return helpers


def _to(state: EconomyState, device) -> EconomyState:
    return EconomyState(*(t.to(device) for t in state))


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("encoding", ["digits", "symlog"])
@pytest.mark.parametrize("open_economy", [True, False])
def test_device_step_matches_torch_reference(helpers, open_economy, encoding):
    device = torch.device("cuda")
    config, encoder = helpers.make(dict(n_consumers=100, n_firms=10), open_economy, encoding, device="cuda")
    kernels = backend.CudaBackend(config, device)
    gen = torch.Generator().manual_seed(21)
    for _ in range(3):
        state = _to(helpers.random_state(config, 256, gen), device)
        actions = tuple(a.to(device) for a in helpers.random_actions(config, 256, gen))
        helpers.compare_step(config, state, actions, Penalties(0.5, 1.0), kernels, encoder)


@requires_gpu
@pytest.mark.gpu
def test_device_matches_host_build(helpers):
    """Same code on both sides: only the math libraries (powf, log1pf) may differ, by a few ulps."""
    config, _ = helpers.make(dict(n_consumers=100, n_firms=10), True, "digits")
    device_kernels = backend.CudaBackend(config, "cuda")
    host_kernels = helpers.host.HostBackend(config)
    gen = torch.Generator().manual_seed(22)
    state = helpers.random_state(config, 64, gen)
    actions = helpers.random_actions(config, 64, gen)
    on_host = host_kernels.step(state, *actions, Penalties())
    on_device = device_kernels.step(_to(state, "cuda"), *(a.cuda() for a in actions), Penalties())
    for name in EconomyState._fields:
        a, b = getattr(on_device[0], name).cpu(), getattr(on_host[0], name)
        torch.testing.assert_close(a, b, rtol=helpers.TOL, atol=helpers.TOL * float(b.abs().max().clamp_min(1)))
    torch.testing.assert_close(on_device[2].cpu(), on_host[2])


@requires_gpu
@pytest.mark.gpu
def test_device_trajectory_with_partial_resets(helpers):
    device = torch.device("cuda")
    config, encoder = helpers.make(dict(n_consumers=100, n_firms=10), True, "symlog", device="cuda")
    params = EconomyParameters.from_config(config, device)
    kernels = backend.CudaBackend(config, device)
    gen = torch.Generator().manual_seed(23)
    E = 512
    state, observations = kernels.reset(None, anneal=0.5, n_envs=E)
    helpers.assert_encoded(encoder, state, observations)
    for _ in range(2 * config.episode_length):
        actions = tuple(a.to(device) for a in helpers.random_actions(config, E, gen))
        state, _ = helpers.compare_step(config, state, actions, Penalties(), kernels, encoder)
        mask = (state.time >= config.episode_length) | (torch.rand(E, generator=gen) < 0.1).to(device)
        expected = reset_where(mask, initial_state(params, E, 0.5, device), state)
        state, observations = kernels.reset(state, mask, 0.5)
        for name in EconomyState._fields:
            assert torch.equal(getattr(state, name), getattr(expected, name)), name
        helpers.assert_encoded(encoder, state, observations)


@requires_gpu
@pytest.mark.gpu
def test_env_rollout_cuda_backend_matches_torch_backend():
    config = RBCConfig(observation_encoding="symlog")
    reference = RBCEnv(config, num_envs=64, device="cuda", seed=0, backend="torch")
    fused = RBCEnv(config, num_envs=64, device="cuda", seed=0, backend="cuda")
    reference.reset()
    fused.reset()
    torch.manual_seed(0)
    for _ in range(config.episode_length):
        action = reference.rand_action()
        out_ref, out_fused = reference.step(action.clone()), fused.step(action.clone())
        assert_same_step_outputs(out_fused, out_ref)


@requires_gpu
@pytest.mark.gpu
def test_launches_run_on_torchs_current_stream(helpers):
    config, _ = helpers.make(dict(n_consumers=100, n_firms=10), True, "digits")
    kernels = backend.CudaBackend(config, "cuda")
    gen = torch.Generator().manual_seed(24)
    state = _to(helpers.random_state(config, 1024, gen), "cuda")
    actions = tuple(a.cuda() for a in helpers.random_actions(config, 1024, gen))
    expected = kernels.step(state, *actions, Penalties())[0].firm_budget.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        got = kernels.step(state, *actions, Penalties())[0].firm_budget
        got_sum = got.sum()  # queued behind the kernel on the same stream
    assert side.cuda_stream in kernels._streams
    side.synchronize()
    assert torch.equal(got, expected)
    assert torch.isclose(got_sum, expected.sum())


@requires_gpu
@pytest.mark.gpu
def test_invalid_actions_are_reported(helpers):
    config, _ = helpers.make(dict(n_consumers=5, n_firms=2), True, "digits")
    kernels = backend.CudaBackend(config, "cuda")
    gen = torch.Generator().manual_seed(25)
    state = _to(helpers.random_state(config, 3, gen), "cuda")
    consumer, firm, government = (a.cuda() for a in helpers.random_actions(config, 3, gen))
    firm[2, 1] = 99
    kernels.step(state, consumer, firm, government, Penalties())
    with pytest.raises(helpers.ActionIndexError, match="firm agent 6 of economy 2: action 99"):
        kernels.check_errors()
    kernels.check_errors()  # cleared


@requires_gpu
@pytest.mark.gpu
def test_fused_step_is_faster_than_torch_backend():
    """A smoke check of throughput (the benchmark measures it properly): fused beats torch at 4096 economies."""
    config = RBCConfig()
    device = torch.device("cuda")
    params = EconomyParameters.from_config(config, device)
    kernels = backend.CudaBackend(config, device)
    from envs.rbc.dynamics import decode_actions
    from envs.rbc.observations import ObservationEncoder

    encoder = ObservationEncoder(config, params)
    E = 4096
    state = initial_state(params, E, 1.0, device)
    consumer = torch.zeros(E, config.n_consumers, config.n_consumer_heads, dtype=torch.int64, device=device)
    firm = torch.full((E, config.n_firms), 7, dtype=torch.int64, device=device)
    government = torch.zeros(E, 1, dtype=torch.int64, device=device)

    def torch_step():
        nxt, _ = step_economy(params, state, decode_actions(params, consumer, firm, government), Penalties())
        encoder.global_observation(nxt), encoder.consumer_observation(nxt), encoder.firm_observation(nxt)

    def fused_step():
        kernels.step(state, consumer, firm, government, Penalties())

    timings = {}
    for name, fn in (("torch", torch_step), ("fused", fused_step)):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        timings[name] = time.perf_counter() - started
    assert timings["fused"] < timings["torch"], timings
