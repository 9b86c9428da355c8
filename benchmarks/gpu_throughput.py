"""Throughput of the fused CUDA backend against the torch backend, on the same GPU.

For the paper's 100/10/1 economy and 128 to 16384 parallel economies it measures, per level:
  core  what the kernels replace: decode the actions, step every economy, encode the next observations
        (torch: decode_actions + step_economy + ObservationEncoder; cuda: one fused launch);
  env   RBCEnv.step on a fixed action TensorDict, i.e. the above plus TorchRL's TensorDict assembly,
        which is the same Python code for both backends.
Episodes end every T steps and are reset by each backend's own reset. Actions are sampled once up front,
so policy cost is excluded. Reported: environment steps/s (economies x steps / s), agent-steps/s
(x 111 agents), and the cuda/torch ratio, with the targets of an H100-class GPU:
  core ratio at 4096 economies >= 10,   core cuda env steps/s at the largest batch >= 5 million.

    python benchmarks/gpu_throughput.py                         # both levels, default sizes
    python benchmarks/gpu_throughput.py --level core --sizes 4096 16384 --steps 200

Without a GPU it prints why and exits with status 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from envs.rbc.config import RBCConfig  # noqa: E402

DEFAULT_SIZES = (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
RATIO_TARGET = 10.0  # core, at 4096 economies
RATIO_TARGET_SIZE = 4096
STEPS_TARGET = 5e6  # core cuda env steps/s at the largest batch


def timed(run_steps, steps: int, repeats: int) -> float:
    """Median seconds for `steps` steps, after one warm-up call, with the device drained around each timing."""
    run_steps(steps)
    samples = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        run_steps(steps)
        torch.cuda.synchronize()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def random_actions(config: RBCConfig, n_envs: int, device: torch.device, count: int):
    C, F = config.n_consumers, config.n_firms
    out = []
    for _ in range(count):
        consumer = torch.stack(
            [torch.randint(n, (n_envs, C), device=device) for n in config.consumer_head_sizes], dim=-1
        )
        firm = torch.randint(config.n_firm_actions, (n_envs, F), device=device)
        government = torch.randint(config.n_government_actions, (n_envs, 1), device=device)
        out.append((consumer, firm, government))
    return out


def core_runners(config: RBCConfig, n_envs: int, device: torch.device):
    """(torch, cuda) callables that run n steps at the level of the step function plus observations."""
    from envs.rbc.dynamics import EconomyParameters, Penalties, decode_actions, initial_state, step_economy
    from envs.rbc.observations import ObservationEncoder
    from gpu.backend import CudaBackend

    params = EconomyParameters.from_config(config, device)
    encoder = ObservationEncoder(config, params)
    kernels = CudaBackend(config, device)
    actions = random_actions(config, n_envs, device, config.episode_length)
    penalties = Penalties()
    T = config.episode_length

    def run_torch(steps: int) -> None:
        state = initial_state(params, n_envs, 1.0, device)
        for t in range(steps):
            if t and t % T == 0:
                state = initial_state(params, n_envs, 1.0, device)
                encoder.global_observation(state), encoder.consumer_observation(state), encoder.firm_observation(state)
            state, _ = step_economy(params, state, decode_actions(params, *actions[t % T]), penalties)
            encoder.global_observation(state), encoder.consumer_observation(state), encoder.firm_observation(state)

    def run_cuda(steps: int) -> None:
        state, _ = kernels.reset(None, anneal=1.0, n_envs=n_envs)
        for t in range(steps):
            if t and t % T == 0:
                state, _ = kernels.reset(state, None, 1.0)
            state, _, _, _ = kernels.step(state, *actions[t % T], penalties)

    return run_torch, run_cuda


def env_runners(config: RBCConfig, n_envs: int, device: torch.device):
    from envs.rbc.env import RBCEnv

    def runner(backend: str):
        env = RBCEnv(config, num_envs=n_envs, device=device, seed=0, backend=backend)
        env.reset()
        action = env.rand_action()

        def run(steps: int) -> None:
            env.reset()
            for t in range(steps):
                if t and t % config.episode_length == 0:
                    env.reset()
                env.step(action)

        return run

    return runner("torch"), runner("cuda")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="parallel economies")
    parser.add_argument("--steps", type=int, default=100, help="steps per timing (episodes of 10 with resets)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per measurement; the median is reported")
    parser.add_argument("--level", choices=("core", "env", "both"), default="both")
    parser.add_argument("--encoding", choices=("digits", "symlog"), default="symlog")
    parser.add_argument("--closed", action="store_true", help="closed economy (no export market)")
    parser.add_argument("--device", default="cuda", help="the GPU to measure on, e.g. cuda:1")
    args = parser.parse_args(argv)

    from gpu.backend import cuda_status

    status = cuda_status()
    if not status.ok:
        print(f"no CUDA GPU available, nothing to measure: {status.reason}")
        return 0

    device = torch.device(args.device)
    config = RBCConfig(open_economy=not args.closed, observation_encoding=args.encoding)
    n_agents = config.n_consumers + config.n_firms + 1
    print(
        f"{torch.cuda.get_device_name(device)}; torch {torch.__version__}; "
        f"{'closed' if args.closed else 'open'} economy, {args.encoding} observations, "
        f"{n_agents} agents per economy; {args.steps} steps x median of {args.repeats}"
    )
    levels = ("core", "env") if args.level == "both" else (args.level,)
    results: dict[tuple[str, int], tuple[float, float]] = {}
    for level in levels:
        print(f"\n[{level}]")
        print(
            f"{'economies':>9} {'torch env-steps/s':>18} {'cuda env-steps/s':>17} {'cuda/torch':>10} "
            f"{'cuda agent-steps/s':>19}"
        )
        for n_envs in args.sizes:
            make = core_runners if level == "core" else env_runners
            run_torch, run_cuda = make(config, n_envs, device)
            torch_rate = n_envs * args.steps / timed(run_torch, args.steps, args.repeats)
            cuda_rate = n_envs * args.steps / timed(run_cuda, args.steps, args.repeats)
            results[level, n_envs] = (torch_rate, cuda_rate)
            print(
                f"{n_envs:>9} {torch_rate:>18,.0f} {cuda_rate:>17,.0f} {cuda_rate / torch_rate:>10.1f} "
                f"{cuda_rate * n_agents:>19,.0f}"
            )
            del run_torch, run_cuda
            torch.cuda.empty_cache()

    if "core" in levels:
        print("\ntargets (H100-class GPU, core level):")
        if ("core", RATIO_TARGET_SIZE) in results:
            torch_rate, cuda_rate = results["core", RATIO_TARGET_SIZE]
            ratio = cuda_rate / torch_rate
            verdict = "met" if ratio >= RATIO_TARGET else "MISSED"
            print(
                f"  cuda/torch at {RATIO_TARGET_SIZE} economies: {ratio:.1f} (target >= {RATIO_TARGET:.0f}): {verdict}"
            )
        largest = max(args.sizes)
        cuda_rate = results["core", largest][1]
        verdict = "met" if cuda_rate >= STEPS_TARGET else "MISSED"
        print(f"  cuda env steps/s at {largest} economies: {cuda_rate:,.0f} (target >= {STEPS_TARGET:,.0f}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
