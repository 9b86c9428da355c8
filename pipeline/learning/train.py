"""`python -m pipeline.learning.train`: run one curriculum stage, from a checkpoint to a checkpoint.

    python -m pipeline.learning.train --config CONFIG --stage NAME [--init CKPT_IN] --out CKPT_OUT

Each stage is one process (one workflow rule). The first stage starts from fresh networks; every
later stage continues the previous stage's checkpoint at the episode where it ended. While it
runs, the stage writes a resume checkpoint every `training.checkpoint_every` episodes next to its
output (`CKPT_OUT.resume`); started again after an interruption, it continues from there and
produces exactly what an uninterrupted run would have.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from envs.rbc.actions import fixed_tax_action
from envs.rbc.config import ConfigError

from ..config import ExperimentConfig
from ..tracking import Tracker
from .checkpoint import CheckpointError, check_compatible, load_checkpoint, save_checkpoint
from .collapse import PRODUCTION, CollapseWatch
from .curriculum import Curriculum
from .metrics import MetricsLog
from .policies import resolve_bf16
from .session import Session, Variant


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="experiment YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value (YAML-parsed), e.g. training.seed=3; repeatable")
    parser.add_argument("--fixed-tax", type=float, default=None,
                        help="fixed-tax baseline: income and corporate tax both at this rate, government frozen")
    parser.add_argument("--fixed-corporate-tax", type=float, default=None,
                        help="with --fixed-tax: the corporate rate, when it differs from the income rate")
    parser.add_argument("--welfare", choices=("total", "consumer_only"), default=None,
                        help="government objective for this branch (default: the config's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def stage_plan_row(plan) -> dict[str, float]:
    row = {
        "episode": plan.episode,
        "schedule/labor_disutility_anneal": plan.labor_disutility_anneal,
        "schedule/firm_actions_allowed": plan.firm_actions_allowed,
        "schedule/max_tax": plan.max_tax,
    }
    row.update({f"schedule/entropy/{g}": v for g, v in plan.entropy.items()})
    for g in ("consumer", "firm", "government"):
        row[f"schedule/trains/{g}"] = float(g in plan.train)
    return row


def run_stage(
    config: ExperimentConfig,
    stage: str,
    out: Path,
    init: Path | None = None,
    variant: Variant = Variant(),
    progress: bool = True,
) -> Path:
    curriculum = Curriculum(config.curriculum, config.economy, fixed_government=variant.fixed_tax is not None,
                            max_corporate_tax=variant.max_corporate_tax)
    start, end = curriculum.bounds[stage] if stage in curriculum.bounds else (None, None)
    if start is None:
        raise ConfigError(f"unknown stage {stage!r}; the curriculum's stages are {list(curriculum.bounds)}")
    session = Session(config, variant)
    collapsed_at = None
    resume = Path(f"{out}.resume")
    # Until the stage completes, its metrics live beside the resume checkpoint under a name the workflow
    # does not declare: Snakemake deletes the declared outputs of an interrupted job before rerunning it,
    # and the rerun, resuming mid-stage, would otherwise lose every earlier episode's row.
    metrics_path = out.with_suffix(".metrics.csv")
    metrics_log = MetricsLog(Path(f"{metrics_path}.partial"))

    if resume.exists():
        payload = load_checkpoint(resume)
        check_compatible(payload, config, resume)
        if payload["stage"] != stage or payload["session"]["variant"] != variant.as_dict():
            raise CheckpointError(
                f"resume checkpoint {resume} belongs to stage {payload['stage']!r} variant "
                f"{payload['session']['variant']}, not stage {stage!r} variant {variant.as_dict()}; delete it to restart"
            )
        session.load_state_dict(payload["session"])
        print(f"resuming stage {stage!r} at episode {session.episode} from {resume}", file=sys.stderr)
    elif init is not None:
        payload = load_checkpoint(init)
        check_compatible(payload, config, init)
        ended = payload["session"]["episode"]
        collapsed_at = payload.get("collapsed_at")
        if collapsed_at is not None:
            print(f"stage {stage!r}: the branch collapsed at episode {collapsed_at} ({init}); passed through "
                  "without training", file=sys.stderr)
        elif not payload.get("stage_complete") or ended != start:
            raise CheckpointError(
                f"checkpoint {init} ends at episode {ended} (stage {payload['stage']!r}"
                f"{'' if payload.get('stage_complete') else ', incomplete'}), but stage {stage!r} starts at episode {start}"
            )
        session.load_state_dict(payload["session"])
    elif start != 0:
        raise CheckpointError(f"stage {stage!r} starts at episode {start}: give --init with the previous stage's checkpoint")
    metrics_log.truncate(session.episode)
    watch = CollapseWatch(config.training.collapse_window, config.training.collapse_production,
                          enabled=variant.fixed_rates is not None)
    watch.replay(metrics_log.rows)

    tracker = Tracker(
        config.tracking,
        rule=f"train:{variant.label()}:{stage}",
        run_name=f"{stage} ({variant.label()})",
        tags={"dge.stage": stage, "dge.variant": variant.label(), "dge.kind": "train",
              "dge.bf16": str(resolve_bf16(config.policy.bf16)).lower()},
    ).start(params={"config": config.to_dict(), "variant": variant.as_dict(), "stage": stage})

    def payload(complete: bool) -> dict:
        data = {
            "config": config.to_dict(),
            "stage": stage,
            "stage_complete": complete,
            "session": session.state_dict(),
        }
        if collapsed_at is not None:
            data["collapsed_at"] = collapsed_at
        return data

    began = time.perf_counter()
    bar = tqdm(total=end - start, initial=session.episode - start, desc=stage, unit="ep",
               disable=not progress, mininterval=2.0, file=sys.stderr)
    try:
        while collapsed_at is None and session.episode < end:
            plan = curriculum.plan(session.episode)
            _, metrics = session.run_episode(plan)
            row = {**stage_plan_row(plan), **metrics}
            metrics_log.append(row)
            if watch.observe(metrics[PRODUCTION]):
                collapsed_at = session.episode
                print(f"stage {stage!r}: the economy collapsed ({watch.describe()}); the branch stops at episode "
                      f"{collapsed_at}", file=sys.stderr)
            if plan.episode % config.tracking.log_every == 0 or session.episode == end:
                tracker.log_metrics({k: v for k, v in row.items() if k != "episode"}, step=plan.episode)
            bar.update(1)
            bar.set_postfix(
                cons=f"{metrics['reward/consumer']:.2f}",
                firm=f"{metrics['reward/firm']:.3g}",
                welfare=f"{metrics['welfare/total']:.4g}",
                refresh=False,
            )
            if session.episode % config.training.checkpoint_every == 0 and session.episode < end:
                metrics_log.flush()  # first: the rows then always reach at least the resume checkpoint
                save_checkpoint(payload(False), resume)
                tracker.flush()
        bar.close()
        save_checkpoint(payload(True), out)
        metrics_log.flush()
        metrics_log.path.replace(metrics_path)
        resume.unlink(missing_ok=True)
        tracker.log_metrics({"stage/wall_time_s": time.perf_counter() - began}, step=session.episode)
        tracker.log_artifact(out, "checkpoints")
        tracker.log_artifact(metrics_path, "metrics")
        tracker.finish()
    except BaseException as err:
        bar.close()
        tracker.finish("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    return out


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM as Ctrl-C while the block runs.

    Batch schedulers and `kill` stop a job with SIGTERM; without this the process dies where it stands and
    its MLflow run stays RUNNING forever. As a KeyboardInterrupt the run is closed as KILLED, and the last
    periodic resume checkpoint is what the restarted job continues from, exactly as after Ctrl-C.
    """
    def handler(signum: int, frame) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one curriculum stage.")
    add_common_arguments(parser)
    parser.add_argument("--stage", required=True, help="stage name from curriculum.stages")
    parser.add_argument("--init", type=Path, default=None, help="previous stage's checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--max-corporate-tax", type=float, default=None,
                        help="learned government: corporate rates above this stay masked for the whole run")
    args = parser.parse_args(argv)
    try:
        config = ExperimentConfig.load(args.config, args.overrides)
        if args.max_corporate_tax is not None:
            if args.fixed_tax is not None:
                raise ConfigError("--max-corporate-tax applies to a learned government, not to --fixed-tax")
            if not 0.0 <= args.max_corporate_tax <= 1.0:
                raise ConfigError(f"--max-corporate-tax {args.max_corporate_tax}: allowed: a rate in [0, 1]")
        if args.fixed_corporate_tax is not None and args.fixed_tax is None:
            raise ConfigError("--fixed-corporate-tax sets a fixed-tax baseline's corporate rate: give --fixed-tax too")
        variant = Variant(fixed_tax=args.fixed_tax, welfare=args.welfare, max_corporate_tax=args.max_corporate_tax,
                          fixed_corporate_tax=args.fixed_corporate_tax)
        if variant.fixed_rates is not None:
            try:
                fixed_tax_action(config.economy, *variant.fixed_rates)
            except ValueError as err:
                raise ConfigError(f"--fixed-tax {args.fixed_tax} --fixed-corporate-tax {args.fixed_corporate_tax}: "
                                  f"{err}") from None
        with interrupt_on_sigterm():
            run_stage(config, args.stage, args.out, args.init, variant, progress=not args.no_progress)
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
