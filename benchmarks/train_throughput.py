"""Throughput of a full PPO iteration on the 100/10/1 economy, and how well it uses the CPU.

One iteration is what training does every episode: roll out one episode of every parallel economy
with the joint policy, then update all three types (PPO, full-batch epochs). For 16, 64 and 128
parallel economies one run measures

  * agent-steps per second of the whole iteration (E x T x 111 agent-steps per iteration);
  * the update's achieved matmul FLOP rate as a fraction of this machine's dense fp32 matmul rate,
    measured in the same run on matrices shaped like the update's. The update's FLOPs are counted
    from the network shapes: per layer 2 x rows x in x out for the forward pass, the same again for
    the weight gradient, and again for the input gradient except at the first layer, whose input
    needs none (about 3x the forward pass in all), per epoch. The consumers' global first-layer
    part runs once per economy-step, not once per consumer;
  * the rollout against its floor: the bare environment (`env._step` on recorded actions) plus
    the policies' forward passes with sampling and log-probabilities on plain tensors;
  * the same iteration with `policy.bf16: true`, and, on one batch, how far bf16 moves PPO's
    log-probabilities, probability ratios and losses from their fp32 values at identical weights;
  * all of it again in a child process whose glibc malloc keeps freed memory (KEEP_FREED_MEMORY),
    because page faults on the update's large temporaries turned out to cost as much as its matmuls.

Targets: the update reaches >= 50% of the measured matmul rate of its precision (the bf16 rate for bf16 runs
on a CPU with native bf16, the fp32 rate otherwise); the rollout costs <= 1.2x its floor. End-to-end
env-steps per second (whole economies stepped and learned from) are printed beside the paper's GPU figure. Every time is the median of timed repeats after a warm-up iteration.

    python benchmarks/train_throughput.py                 # the full measurement (2 threads)
    python benchmarks/train_throughput.py --envs 16 --repeats 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.config import GROUPS, ExperimentConfig  # noqa: E402
from pipeline.learning.curriculum import Curriculum  # noqa: E402
from pipeline.learning.distributions import JointCategorical, MultiHeadCategorical  # noqa: E402
from pipeline.learning.metrics import episode_metrics  # noqa: E402
from pipeline.learning.policies import cpu_has_fast_bf16, group_layouts  # noqa: E402
from pipeline.learning.session import Session  # noqa: E402

UPDATE_TARGET = 0.50
ROLLOUT_TARGET = 1.2
# The paper's GPU implementation steps about 3,000 whole economies per second (100 consumers, 10 firms and the
# government: env-steps of the full economy, learning included), the figure end-to-end throughput is read against.
PAPER_ENV_STEPS_PER_S = 3000.0


def experiment(num_envs: int, bf16: bool) -> ExperimentConfig:
    """The paper economy, every type training from the first episode with its full action set."""
    return ExperimentConfig.from_dict({
        "policy": {"bf16": bf16},
        "training": {"num_envs": num_envs, "threads": 0},
        "tracking": {"enabled": False},
        "curriculum": {
            "stages": [{"name": "all", "episodes": 10**6, "train": list(GROUPS)}],
            "firm_mask": None,
            "tax_mask": None,
        },
    })


# ------------------------------------------------------------------------------------ timing
class Bench:
    """One session and the pieces of its iteration, timed separately."""

    def __init__(self, num_envs: int, bf16: bool = False):
        self.config = experiment(num_envs, bf16)
        self.session = Session(self.config)
        self.curriculum = Curriculum(self.config.curriculum, self.session.economy)
        self.num_envs = num_envs

    def iteration(self) -> dict[str, float]:
        """One training iteration (as `Session.run_episode`), with its parts timed."""
        session = self.session
        plan = self.curriculum.plan(session.episode)
        session.apply(plan)
        t0 = time.perf_counter()
        data = session.collect()
        t1 = time.perf_counter()
        episode_metrics(data, session.economy)
        t2 = time.perf_counter()
        update = {}
        for group in plan.train:
            start = time.perf_counter()
            session.learners[group].update(data, plan.entropy[group])
            update[group] = time.perf_counter() - start
        t3 = time.perf_counter()
        session.episode += 1
        self.last_batch = data
        return {"rollout": t1 - t0, "metrics": t2 - t1, "update": t3 - t2, "total": t3 - t0,
                **{f"update/{g}": v for g, v in update.items()}}

    def floor(self, data) -> dict[str, float]:
        """The rollout's floor: the env's own step on recorded actions, and the bare policy passes."""
        env = self.session.env
        T = data.shape[1]
        actions = [data[:, t].select(*[(g, "action") for g in GROUPS]) for t in range(T)]
        env.reset()
        t0 = time.perf_counter()
        for t in range(T):
            env._step(actions[t])
        t1 = time.perf_counter()
        with torch.no_grad():
            for t in range(T):
                step = data[:, t]
                for group in GROUPS:
                    policy = self.session.policies[group]
                    layout = policy.layout
                    global_obs = step["global_observation"] if layout.global_dim else None
                    logits, _ = policy.network(global_obs, step[group, "observation"], step[group, "action_mask"])
                    cls = MultiHeadCategorical if layout.multi_head else JointCategorical
                    dist = cls(logits)
                    dist.log_prob(dist.sample())
        t2 = time.perf_counter()
        return {"env": t1 - t0, "policy": t2 - t1}


def median_of(samples: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


# ------------------------------------------------------------------------------------ FLOPs
def update_flops(session: Session, num_envs: int) -> dict[str, float]:
    """Matmul FLOPs of one update (all epochs) per group, from the network shapes."""
    config = session.config
    T = session.economy.episode_length
    hidden = list(config.policy.hidden_sizes)
    out = {}
    for group, layout in group_layouts(session.env).items():
        rows = num_envs * T * layout.n_agents
        economy_steps = num_envs * T
        n_out = int(torch.tensor(layout.logits_shape).prod()) + 1
        first_private = rows * layout.private_dim * hidden[0]
        first_global = economy_steps * layout.global_dim * hidden[0]
        later = rows * sum(a * b for a, b in zip(hidden, hidden[1:])) + rows * hidden[-1] * n_out
        forward = 2 * (first_private + first_global + later)
        backward = 2 * (first_private + first_global) + 2 * 2 * later  # no input gradient at layer 1
        out[group] = session.learners[group].epochs * (forward + backward)
    return out


def matmul_rate(shapes: list[tuple[int, int, int]], dtype: torch.dtype, repeats: int) -> dict[str, float]:
    """GFLOP/s of dense (m x k) @ (k x n) products, median of repeats, per shape."""
    rates = {}
    for m, k, n in shapes:
        a = torch.randn(m, k).to(dtype)
        b = torch.randn(k, n).to(dtype)
        c = torch.empty(m, n, dtype=dtype)  # preallocated: time the arithmetic, not the allocator
        calls = max(1, int(2e9 // (2 * m * k * n)))  # about 2 GFLOP per timed sample

        def run():
            for _ in range(calls):
                torch.mm(a, b, out=c)

        run()
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            samples.append(time.perf_counter() - start)
        rates[f"{m}x{k}x{n}"] = 2 * m * k * n * calls / statistics.median(samples) / 1e9
    return rates


def update_shapes(num_envs: int, width: int = 128, heads: int = 12 * 11 + 1) -> list[tuple[int, int, int]]:
    """The consumer update's big products: forward layers, weight gradients, input gradients."""
    rows = num_envs * 10 * 100
    return [(rows, width, width), (rows, width, heads), (width, rows, width), (rows, heads, width)]


# ------------------------------------------------------------------------------------ bf16 accuracy
def bf16_accuracy(num_envs: int) -> dict[str, float]:
    """PPO quantities on one fp32 rollout batch, from the same weights in fp32 and under bf16 autocast."""
    fp32 = Bench(num_envs, bf16=False)
    bf16 = Bench(num_envs, bf16=True)
    for group in GROUPS:
        bf16.session.policies[group].network.load_state_dict(fp32.session.policies[group].network.state_dict())
    plan = fp32.curriculum.plan(0)
    fp32.session.apply(plan)
    batch = fp32.session.collect()
    report: dict[str, float] = {}
    for group in GROUPS:
        results = {}
        for name, bench in (("fp32", fp32), ("bf16", bf16)):
            learner = bench.session.learners[group]
            td = batch.clone()
            learner.advantages(td)
            learner.loss.entropy_coeff.fill_(plan.entropy[group])
            out = learner.loss(td)
            total = out["loss_objective"] + out["loss_entropy"] + out["loss_critic"]
            learner.optimizer.zero_grad(set_to_none=True)
            total.backward()
            grad = torch.cat([p.grad.flatten() for p in learner.parameters if p.grad is not None])
            with torch.no_grad():
                dist = learner.loss.actor_network.get_dist(td)
                log_prob = dist.log_prob(td[group, "action"])
            results[name] = {"out": out, "grad": grad, "log_prob": log_prob}
        a, b = results["fp32"], results["bf16"]
        log_ratio = (b["log_prob"] - a["log_prob"]).double()
        ratio = log_ratio.exp()
        clip = fp32.config.training.clip_epsilon
        report[f"{group}/max_abs_log_prob_diff"] = float(log_ratio.abs().max())
        report[f"{group}/mean_abs_log_prob_diff"] = float(log_ratio.abs().mean())
        report[f"{group}/max_abs_ratio_minus_1"] = float((ratio - 1).abs().max())
        report[f"{group}/share_ratio_off_by_over_clip/10"] = float(((ratio - 1).abs() > clip / 10).double().mean())
        # At identical weights the clipped objective is -mean(ratio * A) with standardized A, which is
        # about 0 in either precision, so its difference is reported as is, not relative to it.
        report[f"{group}/loss_objective_abs_diff"] = abs(float(b["out"]["loss_objective"].detach())
                                                         - float(a["out"]["loss_objective"].detach()))
        for key in ("loss_critic", "loss_entropy"):
            x, y = float(a["out"][key].detach()), float(b["out"][key].detach())
            report[f"{group}/{key}_rel_diff"] = abs(y - x) / max(abs(x), 1e-12)
        report[f"{group}/grad_cosine"] = float(torch.nn.functional.cosine_similarity(a["grad"], b["grad"], dim=0))
        report[f"{group}/grad_rel_diff"] = float((b["grad"] - a["grad"]).norm() / a["grad"].norm())
    # The ratio PPO actually sees before its first step: log-probabilities recorded during a
    # rollout against the update's recomputation, at the same weights, in each precision.
    for name, bench in (("fp32", fp32), ("bf16", bf16)):
        bench.session.apply(plan)
        own = bench.session.collect()
        for group in GROUPS:
            with torch.no_grad():
                dist = bench.session.learners[group].loss.actor_network.get_dist(own.clone())
                log_ratio = dist.log_prob(own[group, "action"]).double() - own[group, "log_prob"].double()
            deviation = float(log_ratio.exp().sub(1).abs().max())
            report[f"{group}/{name}_rollout_vs_update_max_abs_ratio_minus_1"] = deviation
    return report


# ------------------------------------------------------------------------------------ allocator
# The consumers' update allocates many tensors of tens of MB (E x T x 100 rows x 128 or 132 floats).
# glibc serves blocks above its mmap threshold (at most 32 MB, adapted at run time) from fresh
# mmaps and unmaps them when freed, so each elementwise pass over such a tensor first page-faults
# its whole output in. These settings keep freed memory for reuse instead; they must be in the
# environment when the process starts (mallopt() later in the run was measured not to help), and
# they change no result, only where memory comes from.
KEEP_FREED_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 36)}


def allocator_label() -> str:
    return "tuned" if all(os.environ.get(k) == v for k, v in KEEP_FREED_MEMORY.items()) else "default"


def measure_in_child(argv: list[str]) -> dict:
    """The same measurement in a fresh process started with KEEP_FREED_MEMORY."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        env = {**os.environ, **KEEP_FREED_MEMORY}
        subprocess.run([sys.executable, __file__, *argv, "--allocator", "current", "--no-accuracy", "--json", str(out)],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


# ------------------------------------------------------------------------------------ main
def measure(num_envs: int, repeats: int, bf16: bool) -> dict[str, float]:
    bench = Bench(num_envs, bf16)
    bench.iteration()  # warm-up: allocator, autocast caches, first-call paths
    samples = []
    floors = []
    for _ in range(repeats):
        samples.append(bench.iteration())
        floors.append(bench.floor(bench.last_batch))
    result = {**median_of(samples), **{f"floor/{k}": v for k, v in median_of(floors).items()}}
    flops = update_flops(bench.session, num_envs)
    result["update_gflop"] = sum(flops.values()) / 1e9
    for group, value in flops.items():
        result[f"update_gflop/{group}"] = value / 1e9
    economy = bench.session.economy
    agents = economy.n_consumers + economy.n_firms + 1
    result["agent_steps_per_s"] = num_envs * economy.episode_length * agents / result["total"]
    result["env_steps_per_s"] = num_envs * economy.episode_length / result["total"]
    result["update_gflops"] = result["update_gflop"] / result["update"]
    result["rollout_ratio"] = result["rollout"] / (result["floor/env"] + result["floor/policy"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--allocator", choices=("current", "both"), default="both",
                        help="measure with this process's malloc settings only, or also in a child process "
                             "started with KEEP_FREED_MEMORY")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 runs")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the bf16 accuracy check")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    report: dict = {"threads": args.threads, "load_before": os.getloadavg()[0], "peak": {}, "runs": {},
                    "cpu_has_fast_bf16": cpu_has_fast_bf16()}
    for num_envs in args.envs:
        rates = matmul_rate(update_shapes(num_envs) + [(2048, 2048, 2048)], torch.float32, 5)
        bf16_rates = matmul_rate(update_shapes(num_envs)[:1], torch.bfloat16, 5)
        report["peak"][num_envs] = {"fp32": rates, "fp32_peak": max(rates.values()), "bf16": bf16_rates}
    allocator = allocator_label()
    for precision in ("fp32",) if args.no_bf16 else ("fp32", "bf16"):
        runs = report["runs"].setdefault(f"{precision}/{allocator}", {})
        for num_envs in args.envs:
            r = measure(num_envs, args.repeats, bf16=precision == "bf16")
            runs[num_envs] = r
            print(f"{precision}, {allocator} allocator, E={num_envs}: {r['total']:.3f} s/iteration "
                  f"(rollout {r['rollout']:.3f}, update {r['update']:.3f})", file=sys.stderr, flush=True)
    if args.allocator == "both" and allocator == "default":
        child_args = ["--envs", *map(str, args.envs), "--repeats", str(args.repeats), "--threads", str(args.threads)]
        child = measure_in_child(child_args + (["--no-bf16"] if args.no_bf16 else []))
        report["runs"].update(child["runs"])
    for name, runs in report["runs"].items():
        for num_envs, r in runs.items():
            peak = report["peak"][int(num_envs)]
            r["update_fraction_of_peak"] = r["update_gflops"] / peak["fp32_peak"]
            native_bf16 = name.startswith("bf16") and report["cpu_has_fast_bf16"]
            r["own_peak"] = max(peak["bf16"].values()) if native_bf16 else peak["fp32_peak"]
            r["update_fraction_of_own_peak"] = r["update_gflops"] / r["own_peak"]
    if not args.no_bf16 and not args.no_accuracy:
        report["bf16_accuracy"] = bf16_accuracy(min(args.envs))
    report["load_after"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print_report(report)
    return 0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(report: dict) -> None:
    threads = report["threads"]
    print(f"\nFull PPO iteration (rollout + update of all three types) on the 100/10/1 economy, {threads} threads, "
          f"medians.\nLoad average before/after: {report['load_before']:.1f} / {report['load_after']:.1f}"
          + ("  << other work was running: the figures understate this machine" if
             max(report["load_before"], report["load_after"]) > 0.5 else ""))
    print("Native bf16 matmuls on this CPU: " + ("yes, `policy.bf16: auto` uses bf16 autocast" if
          report["cpu_has_fast_bf16"] else "no, `policy.bf16: auto` stays in fp32 (bf16 would be emulated)"))
    header = (f"{'run':>16} {'E':>4} {'s/iter':>7} {'env-steps/s':>12} {'/paper':>7} {'rollout':>8} {'floor':>6} "
              f"{'ratio':>6} {f'<={ROLLOUT_TARGET}':>5} {'update':>7} {'GFLOP':>6} {'GFLOP/s':>8} {'peak':>5} "
              f"{'frac':>5} {f'>={UPDATE_TARGET:.0%}':>5}")
    print("\n" + header)
    print("-" * len(header))
    for name, runs in report["runs"].items():
        for num_envs, r in runs.items():
            floor = r["floor/env"] + r["floor/policy"]
            env_steps = r["env_steps_per_s"]
            print(f"{name:>16} {num_envs:>4} {r['total']:>7.3f} {env_steps:>12,.0f} {env_steps / PAPER_ENV_STEPS_PER_S:>7.2f} "
                  f"{r['rollout']:>8.3f} {floor:>6.3f} {r['rollout_ratio']:>6.2f} "
                  f"{verdict(r['rollout_ratio'] <= ROLLOUT_TARGET):>5} {r['update']:>7.3f} {r['update_gflop']:>6.1f} "
                  f"{r['update_gflops']:>8.1f} {r['own_peak']:>5.0f} {r['update_fraction_of_own_peak']:>5.0%} "
                  f"{verdict(r['update_fraction_of_own_peak'] >= UPDATE_TARGET):>5}")
    print(f"\n(rollout, floor and update in s per iteration; floor = bare env step + policy forward passes; "
          f"env-steps/s = economies x steps per iteration / s per iteration, /paper = against the paper's "
          f"{PAPER_ENV_STEPS_PER_S:,.0f} on a GPU;\n peak = the measured matmul rate of the run's precision (bf16 where "
          "this CPU has it natively), frac = update GFLOP/s / peak)")
    print("\nMeasured matmul GFLOP/s (m x k x n, preallocated output):")
    for num_envs, peak in report["peak"].items():
        fp32 = ", ".join(f"{k} {v:.0f}" for k, v in peak["fp32"].items())
        bf16 = ", ".join(f"{k} {v:.0f}" for k, v in peak["bf16"].items())
        print(f"  E={num_envs}: fp32 {fp32}; bf16 {bf16}")
    print("\nWhere the time goes (s per iteration):")
    for name, runs in report["runs"].items():
        for num_envs, r in runs.items():
            parts = ", ".join(f"{g} {r[f'update/{g}']:.3f}" for g in GROUPS)
            print(f"  {name:>14} E={num_envs:<4} floor: env {r['floor/env']:.3f} + policy {r['floor/policy']:.3f}; "
                  f"metrics {r['metrics']:.3f}; update: {parts}")
    pairs = [(a, a.replace("fp32", "bf16")) for a in report["runs"] if a.startswith("fp32")]
    pairs = [(a, b) for a, b in pairs if b in report["runs"]]
    if pairs:
        print("\nbf16 autocast (policy.bf16: true) against fp32, same allocator:")
        for a, b in pairs:
            for num_envs in report["runs"][a]:
                x, y = report["runs"][a][num_envs], report["runs"][b][num_envs]
                print(f"  {a.split('/')[1]:>7} allocator E={num_envs:<4} s/iter {x['total']:.3f} -> {y['total']:.3f} "
                      f"({x['total'] / y['total']:.2f}x); update {x['update']:.3f} -> {y['update']:.3f} "
                      f"({x['update'] / y['update']:.2f}x); rollout {x['rollout']:.3f} -> {y['rollout']:.3f}")
    if "bf16_accuracy" in report:
        acc = report["bf16_accuracy"]
        print(f"\nbf16 accuracy on one fp32 rollout batch with identical weights (E={min(map(int, report['peak']))}, "
              "PPO clip 0.1):")
        for group in GROUPS:
            print(f"  {group:>10}: |dlogp| max {acc[f'{group}/max_abs_log_prob_diff']:.1e} "
                  f"mean {acc[f'{group}/mean_abs_log_prob_diff']:.1e}; |ratio-1| max "
                  f"{acc[f'{group}/max_abs_ratio_minus_1']:.1e}, share > clip/10 "
                  f"{acc[f'{group}/share_ratio_off_by_over_clip/10']:.1%}; objective abs. diff "
                  f"{acc[f'{group}/loss_objective_abs_diff']:.1e}, critic rel. diff "
                  f"{acc[f'{group}/loss_critic_rel_diff']:.1e}, entropy rel. diff "
                  f"{acc[f'{group}/loss_entropy_rel_diff']:.1e}; gradient cosine {acc[f'{group}/grad_cosine']:.5f}, "
                  f"rel. diff {acc[f'{group}/grad_rel_diff']:.1e}")
        print("  PPO's first-epoch ratio at unchanged weights (rollout log-prob vs update log-prob), max |ratio-1|: "
              + "; ".join(f"{g} fp32 {acc[f'{g}/fp32_rollout_vs_update_max_abs_ratio_minus_1']:.1e} bf16 "
                          f"{acc[f'{g}/bf16_rollout_vs_update_max_abs_ratio_minus_1']:.1e}" for g in GROUPS))


if __name__ == "__main__":
    sys.exit(main())
