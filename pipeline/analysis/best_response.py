"""`python -m pipeline.analysis.best_response`: how much can one agent type gain against the frozen others?

    python -m pipeline.analysis.best_response --config CONFIG --ckpt CKPT --type consumer|firm|government --out DIR

The learned profile is an epsilon-meta-equilibrium if no type can raise its reward by more than
epsilon by changing its shared policy while the other types stay fixed (spec 8). This trains only
the chosen type from the checkpoint, with fresh optimizers, the best-response settings of the
config (by default the reference code's: vanilla policy gradient, entropy 0.05, no action masks,
full labor disutility), and measures the type's reward before and after with evaluation rollouts
(95% confidence intervals), plus the per-episode learning curve to show whether it plateaued.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from envs.rbc.config import ConfigError

from ..config import GROUPS, ExperimentConfig
from ..learning.checkpoint import CheckpointError
from ..learning.curriculum import EpisodePlan
from ..learning.metrics import mean_ci95
from ..tracking import Tracker
from .evaluate import evaluate_session, final_plan, session_from_checkpoint


def best_response_plan(session, config: ExperimentConfig, group: str, episode: int) -> EpisodePlan:
    base = final_plan(session, config)
    use_masks = config.best_response.use_masks
    return EpisodePlan(
        episode=episode,
        train=(group,),
        firm_mask=base.firm_mask if use_masks else torch.ones_like(base.firm_mask),
        government_mask=base.government_mask if use_masks else torch.ones_like(base.government_mask),
        labor_disutility_anneal=1.0,
        entropy={g: config.best_response.entropy_coef for g in GROUPS},
        max_tax=base.max_tax if use_masks else 1.0,
    )


def _paired_gain(after: dict, before: dict, key: str) -> dict:
    """Mean and 95% CI of after - before over paired economy-episodes (same random numbers)."""
    a = torch.tensor(after["economy_samples"][key], dtype=torch.float64)
    b = torch.tensor(before["economy_samples"][key], dtype=torch.float64)
    return mean_ci95(a - b)


def _evaluate(session, plan: EpisodePlan, episodes: int, seed: int) -> dict:
    """Evaluation with a fixed seed, so evaluations of two policies share their random numbers."""
    torch.manual_seed(seed)
    return evaluate_session(session, plan, episodes, keep_trajectory=False)


@contextlib.contextmanager
def untrained(session, group: str, seed: int):
    """Temporarily give `group` a freshly initialized network (the reference point of the training gain)."""
    network = session.policies[group].network
    saved = {k: v.clone() for k, v in network.state_dict().items()}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for module in network.modules():
            if hasattr(module, "reset_parameters") and module is not network:
                module.reset_parameters()
    try:
        yield
    finally:
        network.load_state_dict(saved)


def run_best_response(config: ExperimentConfig, ckpt: Path, group: str, out: Path, episodes: int | None = None,
                      progress: bool = True) -> dict:
    br = config.best_response
    session, _ = session_from_checkpoint(config, ckpt)
    if group in session.fixed:
        raise ConfigError(f"--type {group}: this checkpoint's {group} is a fixed policy (a baseline); it has no best response")
    episodes = episodes or br.episodes
    session.learners = session.make_learners(br.algorithm, br.ppo_epochs, br.learning_rate)
    key = f"reward/{group}"
    start = session.episode
    eval_seed = config.training.seed + 7_919
    plan = best_response_plan(session, config, group, start)
    evaluation_plan = EpisodePlan(**{**plan.__dict__, "train": ()})
    before = _evaluate(session, evaluation_plan, br.eval_episodes, eval_seed)
    with untrained(session, group, config.training.seed):
        reference = _evaluate(session, evaluation_plan, br.eval_episodes, eval_seed)
    torch.manual_seed(config.training.seed + 104_729)

    # The branch is part of the rule's identity: best responses of two branches are two child runs.
    rule = f"best_response:{session.variant.label()}:{group}"
    tracker = Tracker(config.tracking, rule=rule, tags={"dge.kind": "best_response", "dge.type": group}).start(
        params={"checkpoint": str(ckpt), "type": group, "best_response": config.best_response.__dict__}
    )
    curve: list[dict] = []
    bar = tqdm(range(episodes), desc=f"best response {group}", unit="ep", disable=not progress, mininterval=2.0,
               file=sys.stderr)
    for i in bar:
        _, metrics = session.run_episode(EpisodePlan(**{**plan.__dict__, "episode": start + i}))
        row = {"episode": i, **metrics}
        curve.append(row)
        if i % config.tracking.log_every == 0 or i == episodes - 1:
            tracker.log_metrics({k: v for k, v in metrics.items()}, step=i)
        bar.set_postfix(reward=f"{metrics[key]:.4g}", refresh=False)
    after = _evaluate(session, evaluation_plan, br.eval_episodes, eval_seed)

    window = min(br.window, max(episodes // 2, 1))
    rewards = [row[key] for row in curve]
    first = sum(rewards[:window]) / window
    last = sum(rewards[-window:]) / window
    previous = rewards[-2 * window : -window] or rewards[:window]
    result = {
        "type": group,
        "checkpoint": str(ckpt),
        "episodes": episodes,
        "algorithm": br.algorithm,
        "metric": key,
        "before": before["metrics"][key],
        "after": after["metrics"][key],
        "gain": _paired_gain(after, before, key),
        "untrained": reference["metrics"][key],
        "training_gain_vs_untrained": _paired_gain(before, reference, key),
        "curve_start": first,
        "curve_end": last,
        "curve_end_change": last - sum(previous) / len(previous),
        "window": window,
        "before_metrics": {k: v["mean"] for k, v in before["metrics"].items()},
        "after_metrics": {k: v["mean"] for k, v in after["metrics"].items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    with (out / "curve.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(curve[0]))
        writer.writeheader()
        writer.writerows(curve)
    (out / "best_response.json").write_text(json.dumps(result, indent=2))
    tracker.log_metrics({"best_response/gain": result["gain"]["mean"], "best_response/before": result["before"]["mean"],
                         "best_response/after": result["after"]["mean"]}, step=episodes)
    tracker.log_artifact(out / "best_response.json", "best_response")
    tracker.log_artifact(out / "curve.csv", "best_response")
    tracker.finish()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Best response of one agent type against the frozen others.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--type", required=True, choices=GROUPS)
    parser.add_argument("--out", type=Path, required=True, help="directory for best_response.json and curve.csv")
    parser.add_argument("--episodes", type=int, default=None, help="default: best_response.episodes")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        config = ExperimentConfig.load(args.config, args.overrides)
        result = run_best_response(config, args.ckpt, args.type, args.out, args.episodes, not args.no_progress)
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    gain = result["gain"]
    print(f"{args.type}: before {result['before']['mean']:.4g}, after {result['after']['mean']:.4g}, "
          f"gain {gain['mean']:.4g} [{gain['ci95'][0]:.4g}, {gain['ci95'][1]:.4g}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
