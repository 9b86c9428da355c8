"""`python -m pipeline.analysis.evaluate`: roll out a checkpoint without learning and summarize the economy.

    python -m pipeline.analysis.evaluate --config CONFIG --ckpt CKPT --out summary.json [--episodes N]

CONFIG is an experiment YAML or a workflow profile with --economy and --seed (pipeline.profiles).

Every economy-episode is one sample; the summary gives means with 95% confidence intervals for
per-type rewards, welfare in both variants and the economic readout (prices, wages, hours,
consumption, production, exports, taxes), per-firm detail (domestic share of sales, employment),
one full trajectory of the first economy for plotting, and the consumer policy's answer to each
firm's posted wage and price (pipeline.analysis.probes).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from tensordict import TensorDictBase

from ..config import ExperimentConfig
from ..learning.checkpoint import check_compatible, load_checkpoint
from ..learning.command import run_command
from ..learning.curriculum import Curriculum, EpisodePlan
from ..learning.files import atomic_write_text, check_output_dir
from ..learning.metrics import economy_samples, mean_ci95
from ..learning.session import Session, Variant
from ..profiles import ABLATION, add_config_arguments, load_experiment
from ..tracking import Tracker
from .probes import consumer_responses

FIRM_FIELDS = ("price", "wage", "production", "sales", "exports", "profit", "reward")


def session_from_checkpoint(config: ExperimentConfig, ckpt: Path, num_envs: int | None = None) -> tuple[Session, dict]:
    payload = load_checkpoint(ckpt)
    check_compatible(payload, config, ckpt, "give --config the config it was trained with")
    variant = Variant(**payload["session"]["variant"])
    session = Session(config, variant, num_envs=num_envs)
    session.load_state_dict(payload["session"], optimizers=False)
    return session, payload


def final_plan(session: Session, config: ExperimentConfig) -> EpisodePlan:
    """The curriculum's plan at the checkpoint's episode, with nobody training."""
    curriculum = Curriculum(config.curriculum, session.economy, fixed_government="government" in session.fixed,
                            max_corporate_tax=session.variant.max_corporate_tax)
    plan = curriculum.plan(max(session.episode - 1, 0))
    return EpisodePlan(
        episode=plan.episode,
        train=(),
        firm_mask=plan.firm_mask,
        government_mask=plan.government_mask,
        labor_disutility_anneal=plan.labor_disutility_anneal,
        entropy=plan.entropy,
        max_tax=plan.max_tax,
    )


def firm_samples(data: TensorDictBase) -> dict[str, torch.Tensor]:
    """(E, F) per-firm episode means over steps 1..T-1 (hours per firm from the employer choices)."""
    nxt = data.get("next")
    out = {}
    for field in FIRM_FIELDS:
        value = nxt.get(("firm", field))
        value = value.squeeze(-1) if value.dim() == 4 else value
        out[field] = value[:, 1:].mean(1)
    hours = nxt.get(("consumer", "hours"))  # (E, T, C)
    employer = nxt.get(("consumer", "employer"))
    n_firms = nxt.get(("firm", "price")).shape[-1]
    by_firm = torch.zeros(*hours.shape[:2], n_firms).scatter_add_(2, employer, hours)
    out["hours"] = by_firm[:, 1:].mean(1)
    out["workers"] = (torch.zeros_like(by_firm).scatter_add_(2, employer, (hours > 0).float()))[:, 1:].mean(1)
    consumption = nxt.get(("consumer", "consumption"))  # (E, T, C, F) units of each good
    out["consumption"] = consumption.sum(2)[:, 1:].mean(1)
    return out


def trajectory(data: TensorDictBase, economy_index: int = 0) -> dict:
    """Everything about one economy's episode, step by step, as plain lists."""
    nxt = data.get("next")[economy_index]
    firm = {f: nxt.get(("firm", f)).squeeze(-1).tolist() for f in ("price", "wage", "production", "sales", "exports",
                                                                   "inventory", "budget", "capital", "profit")}
    hours = nxt.get(("consumer", "hours"))
    employer = nxt.get(("consumer", "employer"))
    labor = torch.zeros(hours.shape[0], nxt.get(("firm", "price")).shape[-1]).scatter_add_(1, employer, hours)
    firm["labor"] = labor.tolist()
    consumer = {
        "hours": hours.tolist(),
        "consumption": nxt.get(("consumer", "consumption")).sum(-1).tolist(),
        "budget": nxt.get(("consumer", "budget")).tolist(),
        "reward": nxt.get(("consumer", "reward")).squeeze(-1).tolist(),
    }
    government = {
        f: nxt.get(("government", f)).reshape(-1).tolist() for f in ("income_tax_rate", "corporate_tax_rate", "revenue")
    }
    return {"firm": firm, "consumer": consumer, "government": government}


def evaluate_session(session: Session, plan: EpisodePlan, episodes: int, keep_trajectory: bool = True,
                     extra: Callable[[TensorDictBase], dict[str, torch.Tensor]] | None = None) -> dict:
    """Means and intervals over `episodes` x economies; `extra` adds per-economy samples of its own."""
    samples: dict[str, list[torch.Tensor]] = {}
    firms: dict[str, list[torch.Tensor]] = {}
    first = None
    for _ in range(episodes):
        session.apply(plan)
        data = session.collect()
        per_economy = economy_samples(data, session.economy)
        if extra is not None:
            per_economy.update(extra(data))
        for key, value in per_economy.items():
            samples.setdefault(key, []).append(value)
        for key, value in firm_samples(data).items():
            firms.setdefault(key, []).append(value)
        if first is None and keep_trajectory:
            first = trajectory(data)
            responses = consumer_responses(session, data)
    stacked = {k: torch.cat(v) for k, v in samples.items()}
    per_firm = {k: torch.cat(v) for k, v in firms.items()}  # (episodes * E, F)
    summary = {key: mean_ci95(value) for key, value in stacked.items()}
    result = {
        "episodes": episodes,
        "economies_per_episode": session.env.num_envs,
        "samples": stacked["welfare/total"].numel(),
        "metrics": summary,
        "per_firm": {k: [mean_ci95(v[:, i]) for i in range(v.shape[1])] for k, v in per_firm.items()},
        "firm_samples": {k: v.tolist() for k, v in per_firm.items()},
        "economy_samples": {k: v.tolist() for k, v in stacked.items()},
        "variant": session.variant.as_dict(),
        "episode": session.episode,
    }
    sales, exports = per_firm["sales"], per_firm["exports"]
    result["per_firm"]["domestic_share"] = [
        float(sales[:, i].sum() / (sales[:, i] + exports[:, i]).sum().clamp_min(1e-9)) for i in range(sales.shape[1])
    ]
    if first is not None:
        result["trajectory"] = first
        result["consumer_response"] = responses
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint without learning.")
    add_config_arguments(parser)
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="summary JSON to write")
    parser.add_argument("--episodes", type=int, default=None, help="default: evaluation.episodes")
    parser.add_argument("--rule", default=None, help="tracking rule id (default: evaluate:<checkpoint name>)")
    args = parser.parse_args(argv)
    return run_command(lambda: _main(args), f"evaluation of {args.ckpt} stopped before it finished; run the same "
                                            "command again (an evaluation starts over)")


def _main(args: argparse.Namespace) -> int:
    ablation = load_checkpoint(args.ckpt).get("stage") == ABLATION  # its curriculum is the ablation's
    kind = "ablation_evaluate" if ablation else "evaluate"
    config = load_experiment(args.config, args.overrides, args.economy, args.seed, kind)
    check_output_dir(args.out)
    session, payload = session_from_checkpoint(config, args.ckpt, num_envs=config.evaluation.num_envs)
    episodes = args.episodes or config.evaluation.episodes
    torch.manual_seed(config.training.seed + 1_000_003)
    result = evaluate_session(session, final_plan(session, config), episodes)
    result["collapsed_at"] = payload.get("collapsed_at")  # a fixed-tax branch stopped early (learning.collapse)
    atomic_write_text(args.out, json.dumps(result))
    rule = args.rule or f"evaluate:{args.ckpt.stem}"
    with Tracker(config.tracking, rule=rule, tags={"dge.kind": "evaluate"}).start(
        params={"checkpoint": str(args.ckpt), "episodes": episodes, "variant": result["variant"]}
    ) as tracker:
        tracker.log_metrics({k: v["mean"] for k, v in result["metrics"].items()}, step=session.episode)
        tracker.log_artifact(args.out, "evaluation")
    m = result["metrics"]
    print(
        f"welfare(total) {m['welfare/total']['mean']:.1f} [{m['welfare/total']['ci95'][0]:.1f}, "
        f"{m['welfare/total']['ci95'][1]:.1f}]  consumer reward {m['reward/consumer']['mean']:.2f}  "
        f"firm reward {m['reward/firm']['mean']:.0f}  hours {m['economy/hours']['mean']:.0f}  "
        f"price {m['economy/price']['mean']:.0f}  wage {m['economy/wage']['mean']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
