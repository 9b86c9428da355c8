"""Throughput of the RBC economy against the cost of the consumer policy that will drive it.

For the full 100/10/1 economy at several numbers of parallel economies, one run measures
  (a) the bare step: `env.step` on a fixed action TensorDict, and the pure `step_economy` kernel;
  (b) `env.rollout(T, break_when_any_done=False)` under the env's random policy, with and without a
      preallocated `out=` buffer reused across calls;
  (c) the consumer policy's forward pass (spec 7.2) on the same batch: `pipeline.learning.policies` when it
      is importable, otherwise a stand-in with the same shapes;
and prints agent-steps per second plus two ratios with their targets:
  rollout / bare step     <= 1.5   (TorchRL's trajectory plumbing should not dominate),
  env step / consumer fwd <= 0.1   (the economy should be cheap next to the network it trains).

Every figure is the median of several interleaved rounds after two warm-up rounds; the ratios are
medians of per-round ratios.

    python benchmarks/env_throughput.py                  # the full measurement (2 threads)
    python benchmarks/env_throughput.py --profile 256    # where the rollout's extra time goes
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from envs.rbc.config import RBCConfig  # noqa: E402
from envs.rbc.dynamics import Penalties, decode_actions, initial_state, step_economy  # noqa: E402
from envs.rbc.env import RBCEnv  # noqa: E402
from envs.rbc.observations import full_observation  # noqa: E402

ROLLOUT_TARGET = 1.5
POLICY_TARGET = 0.1


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# ------------------------------------------------------------------------------------ consumer policy
class StandInConsumerPolicy(torch.nn.Module):
    """Spec 7.2's consumer network: 2 x 128 ReLU trunk, 12 heads padded to 11 logits, value head."""

    def __init__(self, input_dim: int, heads: int, choices: int):
        super().__init__()
        self.heads, self.choices = heads, choices
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(input_dim, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU()
        )
        self.policy_head = torch.nn.Linear(128, heads * choices)
        self.value_head = torch.nn.Linear(128, 1)

    def forward(self, global_obs, private_obs, mask):
        hidden = self.trunk(full_observation(global_obs, private_obs))
        logits = self.policy_head(hidden).unflatten(-1, (self.heads, self.choices))
        logits = logits.masked_fill(~mask, -1e9).log_softmax(-1)
        gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp_min(1e-20)))
        action = (logits + gumbel).argmax(-1)
        log_prob = logits.gather(-1, action.unsqueeze(-1)).squeeze(-1).sum(-1)
        return action, log_prob, self.value_head(hidden)


def consumer_forward(env: RBCEnv):
    """A callable running the consumer policy once on a reset batch, and its description."""
    td = env.reset()
    try:
        from pipeline.learning.policies import build_policies
    except ImportError:
        build_policies = None
    if build_policies is not None:
        module = build_policies(env)["consumer"].collector
        batch = td.select("global_observation", ("consumer", "observation"), ("consumer", "action_mask"))

        def run():
            with torch.no_grad():
                module(batch.clone(False))

        return run, "pipeline.learning.policies consumer actor+critic"
    mask = td["consumer", "action_mask"]
    net = StandInConsumerPolicy(env.encoder.global_dim + env.encoder.consumer_dim, mask.shape[-2], mask.shape[-1])

    def run():
        with torch.no_grad():
            net(td["global_observation"], td["consumer", "observation"], mask)

    return run, "stand-in spec-7.2 MLP"


# ------------------------------------------------------------------------------------ measurements
def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(num_envs: int, repeats: int, horizon: int) -> dict[str, float]:
    """Per-step seconds of each measurement, interleaved round by round.

    Other jobs share the machine, so the measurements alternate within every round: a burst of
    load then hits all of them alike, and each ratio is also taken within a round (paired) before
    its median is formed.
    """
    config = RBCConfig()
    env = RBCEnv(config, num_envs=num_envs, seed=0)
    agents = num_envs * (config.n_consumers + config.n_firms + 1)

    # (a) bare env.step on one fixed action TensorDict, episodes of `horizon` steps from a reset
    action = env.rand_action(env.reset())

    def env_steps():
        for _ in range(horizon):
            env.step(action)

    # the kernel alone: decoded decisions and state tensors in, tensors out
    params, penalties = env.params, Penalties()
    decisions = decode_actions(
        params, action["consumer", "action"], action["firm", "action"], action["government", "action"]
    )

    def kernel_steps():
        state = initial_state(params, num_envs, 1.0, env.device)
        for _ in range(horizon):
            state, _ = step_economy(params, state, decisions, penalties)

    # (b) rollouts with the env's random policy, fresh output and a reused preallocated buffer
    buffer = env.rollout(horizon, break_when_any_done=False)

    # (c) consumer policy forward on the same batch
    forward, policy_name = consumer_forward(env)

    runs = {
        "kernel_s": (kernel_steps, horizon),
        "step_s": (env_steps, horizon),
        "rollout_s": (lambda: env.rollout(horizon, break_when_any_done=False), horizon),
        "rollout_out_s": (lambda: env.rollout(horizon, break_when_any_done=False, out=buffer), horizon),
        "forward_s": (forward, 1),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(repeats + 2):  # the first two rounds warm up
        for name, (fn, per) in runs.items():
            if name == "step_s":
                env.reset()
            seconds = timed(fn) / per
            if round_ >= 2:
                samples[name].append(seconds)
    row = {name: statistics.median(values) for name, values in samples.items()}
    row["ratio_rollout"] = statistics.median(r / s for r, s in zip(samples["rollout_s"], samples["step_s"]))
    row["ratio_policy"] = statistics.median(s / f for s, f in zip(samples["step_s"], samples["forward_s"]))
    row.update(num_envs=num_envs, agents=agents, consumers=num_envs * config.n_consumers, policy=policy_name)
    return row


def report(rows: list[dict]) -> None:
    print(f"consumer policy: {rows[0]['policy']}")
    print("agent-steps/s (111 agents per economy); consumer forward in consumer-agents/s; times in ms per step")
    header = (
        f"{'envs':>5} {'kernel':>12} {'env.step':>12} {'rollout':>12} {'rollout+out':>12} {'cons.fwd':>12}"
        f" | {'rollout/step':>12} {'step/fwd':>9}"
    )
    print(header)
    for r in rows:
        rate = lambda seconds: f"{r['agents'] / seconds / 1e6:6.2f}M {seconds * 1e3:5.1f}"  # noqa: E731
        ratio_rollout, ratio_policy = r["ratio_rollout"], r["ratio_policy"]
        fwd = f"{r['consumers'] / r['forward_s'] / 1e6:6.2f}M {r['forward_s'] * 1e3:5.1f}"
        print(
            f"{r['num_envs']:>5} {rate(r['kernel_s']):>12} {rate(r['step_s']):>12} {rate(r['rollout_s']):>12}"
            f" {rate(r['rollout_out_s']):>12} {fwd:>12} | "
            f"{ratio_rollout:5.2f} {'PASS' if ratio_rollout <= ROLLOUT_TARGET else 'MISS':>4}   "
            f"{ratio_policy:5.3f} {'PASS' if ratio_policy <= POLICY_TARGET else 'MISS':>4}"
        )
    print(f"targets: rollout/step <= {ROLLOUT_TARGET}, env step/consumer forward <= {POLICY_TARGET}")


# ------------------------------------------------------------------------------------ profile
def leaf_bytes(td) -> list[tuple[str, int]]:
    """Bytes each leaf occupies once materialized (expanded views count at full size)."""
    rows = []
    for key in td.keys(True, True):
        value = td.get(key)
        rows.append(("/".join(key) if isinstance(key, tuple) else key, value.numel() * value.element_size()))
    return sorted(rows, key=lambda r: -r[1])


def profile(num_envs: int, horizon: int, repeats: int) -> None:
    env = RBCEnv(RBCConfig(), num_envs=num_envs, seed=0)
    step_td = env.rand_step(env.reset())
    rows = leaf_bytes(step_td)
    total = sum(b for _, b in rows)
    print(f"bytes stored per step at {num_envs} economies: {total / 1e6:.1f} MB (root + next)")
    for name, size in rows[:12]:
        print(f"  {name:<40} {size / 1e6:8.2f} MB  {100 * size / total:5.1f}%")

    # the rollout's pieces, each timed alone (ms per step)
    action = env.rand_action(env.reset())
    td = env.reset()
    steps = []
    for _ in range(horizon):
        data, td = env.step_and_maybe_reset(env.rand_action(td))
        steps.append(data)
    buffer = torch.stack(steps, 1)
    parts = {
        "rand_action": median_time(lambda: env.rand_action(), repeats),
        "env.step (fixed action)": median_time(lambda: env.step(action.clone(False)), repeats),
        "step_and_maybe_reset": median_time(lambda: env.step_and_maybe_reset(action.clone(False)), repeats),
        "stack, fresh output": median_time(lambda: torch.stack(steps, 1), repeats) / horizon,
        "stack into preallocated out": median_time(lambda: torch.stack(steps, 1, out=buffer), repeats) / horizon,
        "env.rollout": median_time(lambda: env.rollout(horizon, break_when_any_done=False), repeats) / horizon,
    }
    print(f"ms per step at {num_envs} economies (medians of {repeats}):")
    for name, seconds in parts.items():
        print(f"  {name:<30} {seconds * 1e3:7.2f}")

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        env.rollout(horizon, break_when_any_done=False)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(12)
    print(stream.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", type=int, metavar="NUM_ENVS", help="profile the rollout instead")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.profile:
        profile(args.profile, args.horizon, args.repeats)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, episode length {args.horizon}")
    rows = [measure(n, args.repeats, args.horizon) for n in args.sizes]
    report(rows)


if __name__ == "__main__":
    main()
