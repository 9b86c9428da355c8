"""The machine that a run's wall times belong to, for the report: CPU, native bf16, train_throughput's figure.

    python benchmarks/machine.py --out results/<profile>/machine.json

The same iteration runs 5-7 times faster on a CPU with native bf16 (AVX-512 BF16 or AMX) than on one with
AVX2 only, so a wall time means little without the machine's own per-iteration figure beside it. The figure
is train_throughput.py's: one full PPO iteration of the 100/10/1 economy with 16 economies, one thread, in the
precision `policy.bf16: auto` chooses here, median of a few repeats after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import cpu_has_fast_bf16, measure  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(repeats: int = 3, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    bf16 = cpu_has_fast_bf16()
    load_before = os.getloadavg()[0]
    run = measure(16, repeats, bf16=bf16)
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "native_bf16": bf16,
        "precision": "bf16" if bf16 else "fp32",
        "threads": threads,
        "train_throughput_s_per_iteration": run["total"],
        "rollout_s": run["rollout"],
        "update_s": run["update"],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    machine = describe(args.repeats, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(machine, indent=2))
    tmp.replace(args.out)
    print(f"{machine['cpu_model']}: native bf16 {machine['native_bf16']}, "
          f"{machine['train_throughput_s_per_iteration']:.3f} s per iteration ({machine['precision']}, E=16, "
          f"{machine['threads']} thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
