"""`python -m pipeline.learning.train`: run one curriculum stage, from a checkpoint to a checkpoint.

    python -m pipeline.learning.train --config CONFIG --stage NAME [--init CKPT_IN] --out CKPT_OUT
    python -m pipeline.learning.train --config PROFILE --economy NAME --seed N --stage NAME ...

Each stage is one process (one workflow rule). The first stage starts from fresh networks; every
later stage continues the previous stage's checkpoint at the episode where it ended. While it
runs, the stage writes a resume checkpoint every `training.checkpoint_every` episodes next to its
output (`CKPT_OUT.resume`); started again after an interruption, it continues from there and
produces exactly what an uninterrupted run would have. Started again with a changed config, it
starts the stage from its beginning and keeps the old resume checkpoint (and its metrics) under
`CKPT_OUT.resume.stale-<time>`: that checkpoint belongs to another experiment.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from envs.rbc.actions import fixed_tax_action
from envs.rbc.config import ConfigError

from ..config import ExperimentConfig
from ..profiles import ABLATION, add_config_arguments, load_experiment
from ..tracking import Tracker
from .algorithms import TrainingDiverged
from .checkpoint import (
    CheckpointError,
    check_compatible,
    checkpoint_size,
    config_differences,
    describe_differences,
    load_checkpoint,
    save_checkpoint,
)
from .collapse import PRODUCTION, CollapseWatch
from .command import Interrupted, run_command, stop_reason
from .curriculum import Curriculum
from .files import check_output_dir
from .metrics import MetricsLog
from .policies import resolve_bf16
from .session import Session, Variant


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
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


class StageRun:
    """One stage between its checkpoints: where it starts from, its episode loop and the files it leaves."""

    def __init__(self, config: ExperimentConfig, stage: str, out: Path, variant: Variant):
        self.curriculum = Curriculum(config.curriculum, config.economy, fixed_government=variant.fixed_tax is not None,
                                     max_corporate_tax=variant.max_corporate_tax)
        if stage not in self.curriculum.bounds:
            raise ConfigError(f"unknown stage {stage!r}; the curriculum's stages are {list(self.curriculum.bounds)}")
        self.start, self.end = self.curriculum.bounds[stage]
        self.config, self.stage, self.variant, self.out = config, stage, variant, Path(out)
        self.session = Session(config, variant)
        self.resume = Path(f"{out}.resume")
        # Until the stage completes, its metrics live beside the resume checkpoint under a name the workflow
        # does not declare: Snakemake deletes the declared outputs of an interrupted job before rerunning it,
        # and the rerun, resuming mid-stage, would otherwise lose every earlier episode's row.
        self.metrics_path = self.out.with_suffix(".metrics.csv")
        self.partial = Path(f"{self.metrics_path}.partial")
        self.saved_at: int | None = None  # episode of the resume checkpoint on disk, if any
        self.collapsed_at: int | None = None  # a fixed-tax branch whose economy collapsed (learning.collapse)

    def payload(self, complete: bool) -> dict:
        data = {"config": self.config.to_dict(), "stage": self.stage, "stage_complete": complete,
                "session": self.session.state_dict()}
        if self.collapsed_at is not None:
            data["collapsed_at"] = self.collapsed_at
        return data

    # ------------------------------------------------------------------ where the stage starts
    def restore(self, init: Path | None) -> None:
        if not (self.resume.exists() and self._resume()):
            if init is not None:
                self._continue(init)
            elif self.start != 0:
                raise CheckpointError(f"stage {self.stage!r} starts at episode {self.start}: give --init with the "
                                      "previous stage's checkpoint")
        self.metrics = MetricsLog(self.partial)
        self.metrics.truncate(self.session.episode)
        self._check_metrics()
        self.watch = CollapseWatch(self.config.training.collapse_window, self.config.training.collapse_production,
                                   enabled=self.variant.fixed_rates is not None)
        self.watch.replay(self.metrics.rows)
        if self.saved_at is not None:
            print(f"resuming stage {self.stage!r} at episode {self.saved_at} from {self.resume}", file=sys.stderr)

    def _continue(self, init: Path) -> None:
        """Start where the previous stage's checkpoint ended."""
        payload = load_checkpoint(init, "run the stage that produced it again, or give another --init")
        check_compatible(payload, self.config, init,
                         "give --init a checkpoint made with this config (run the earlier stages with it)")
        ended = payload["session"]["episode"]
        self.collapsed_at = payload.get("collapsed_at")
        if self.collapsed_at is not None:
            print(f"stage {self.stage!r}: the branch collapsed at episode {self.collapsed_at} ({init}); passed "
                  "through without training", file=sys.stderr)
        elif not payload.get("stage_complete") or ended != self.start:
            raise CheckpointError(
                f"checkpoint {init} ends at episode {ended} (stage {payload['stage']!r}"
                f"{'' if payload.get('stage_complete') else ', incomplete'}), but stage {self.stage!r} starts at "
                f"episode {self.start}; give --init the checkpoint of the stage before {self.stage!r}")
        self.session.load_state_dict(payload["session"])

    def _resume(self) -> bool:
        """Continue from the resume checkpoint; False (and the file set aside) when the config has changed."""
        restart = f"move it away to run stage {self.stage!r} from its beginning"
        payload = load_checkpoint(self.resume, restart)
        differences = config_differences(payload["config"], self.config)
        if differences:
            self._set_aside(differences)
            return False
        if payload["stage"] != self.stage or payload["session"]["variant"] != self.variant.as_dict():
            raise CheckpointError(
                f"resume checkpoint {self.resume} belongs to stage {payload['stage']!r} variant "
                f"{payload['session']['variant']}, not stage {self.stage!r} variant {self.variant.as_dict()}; "
                f"give another --out, or {restart}")
        self.session.load_state_dict(payload["session"])
        self.saved_at = self.session.episode
        return True

    def _set_aside(self, differences: list[str]) -> None:
        """A changed config makes the resume checkpoint another experiment's: keep it, out of the way."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = []
        for path in (self.resume, self.partial):
            if path.exists():
                target = path.with_name(f"{path.name}.stale-{stamp}")
                n = 1
                while target.exists():
                    target, n = path.with_name(f"{path.name}.stale-{stamp}-{n}"), n + 1
                path.replace(target)
                kept.append(target)
        print(f"config changed since {self.resume} was saved ({describe_differences(differences)}): starting stage "
              f"{self.stage!r} from its beginning; the old resume checkpoint is kept as {kept[0]}", file=sys.stderr)

    def _check_metrics(self) -> None:
        """Every episode the resumed networks have trained on must keep its metrics row."""
        missing = self.metrics.missing(self.start, self.session.episode)
        if missing:
            raise CheckpointError(
                f"metrics file {self.partial} {'is damaged and ' if self.metrics.damaged else ''}lacks the rows of "
                f"episodes {missing[0]}-{missing[-1]}, which {self.resume} has already trained; move both away to "
                f"run stage {self.stage!r} from its beginning")
        if self.metrics.damaged:
            print(f"metrics file {self.partial} was damaged after episode {self.session.episode - 1}: kept its "
                  f"{len(self.metrics.rows)} complete rows, the rest are computed again", file=sys.stderr)

    # ------------------------------------------------------------------ the episodes
    def train(self, tracker: Tracker, progress: bool) -> None:
        session, config = self.session, self.config
        bar = tqdm(total=self.end - self.start, initial=session.episode - self.start, desc=self.stage, unit="ep",
                   disable=not progress, mininterval=2.0, file=sys.stderr)
        try:
            while self.collapsed_at is None and session.episode < self.end:
                plan = self.curriculum.plan(session.episode)
                try:
                    _, metrics = session.run_episode(plan)
                except TrainingDiverged as err:
                    raise TrainingDiverged(self._diverged(err, plan.episode), err.group) from None
                row = {**stage_plan_row(plan), **metrics}
                self.metrics.append(row)
                if self.watch.observe(metrics[PRODUCTION]):
                    self.collapsed_at = session.episode
                    print(f"stage {self.stage!r}: the economy collapsed ({self.watch.describe()}); the branch stops "
                          f"at episode {self.collapsed_at}", file=sys.stderr)
                if plan.episode % config.tracking.log_every == 0 or session.episode == self.end:
                    tracker.log_metrics({k: v for k, v in row.items() if k != "episode"}, step=plan.episode)
                bar.update(1)
                bar.set_postfix(cons=f"{metrics['reward/consumer']:.2f}", firm=f"{metrics['reward/firm']:.3g}",
                                welfare=f"{metrics['welfare/total']:.4g}", refresh=False)
                if session.episode % config.training.checkpoint_every == 0 and session.episode < self.end:
                    self.metrics.flush()  # first: the rows then always reach at least the resume checkpoint
                    save_checkpoint(self.payload(False), self.resume)
                    self.saved_at = session.episode
                    tracker.flush()
        finally:
            bar.close()

    def complete(self) -> None:
        save_checkpoint(self.payload(True), self.out)
        self.metrics.flush()
        self.metrics.path.replace(self.metrics_path)
        self.resume.unlink(missing_ok=True)

    def _kept(self) -> str:
        if self.saved_at is None:
            return "no resume checkpoint was written yet"
        return f"the resume checkpoint {self.resume} (episode {self.saved_at}) is kept"

    def _diverged(self, err: TrainingDiverged, episode: int) -> str:
        rate = self.config.training.learning_rate[err.group]
        return (f"training diverged at episode {episode} of stage {self.stage!r}: {err}; {self._kept()}; lower "
                f"training.learning_rate.{err.group} (now {rate:g}) or training.max_grad_norm and run again")

    def stopped(self, err: KeyboardInterrupt) -> str:
        where = f"{stop_reason(err)} at episode {self.session.episode} of stage {self.stage!r}"
        if self.saved_at is None:
            return f"{where}, before its first resume checkpoint: run the same command again to start the stage over"
        return f"{where}: run the same command again to resume from {self.resume} (episode {self.saved_at})"


def run_stage(
    config: ExperimentConfig,
    stage: str,
    out: Path,
    init: Path | None = None,
    variant: Variant = Variant(),
    progress: bool = True,
) -> Path:
    run = StageRun(config, stage, Path(out), variant)
    # The final save must not be the first to find the directory read-only or full: at its peak the stage holds
    # its resume checkpoint and the final one, each with Adam's two moments per parameter (not there yet).
    check_output_dir(run.out, needed_bytes=2 * 3 * checkpoint_size(run.payload(False)))
    run.restore(init)
    tracker = Tracker(
        config.tracking,
        rule=f"train:{variant.label()}:{stage}",
        run_name=f"{stage} ({variant.label()})",
        tags={"dge.stage": stage, "dge.variant": variant.label(), "dge.kind": "train",
              "dge.bf16": str(resolve_bf16(config.policy.bf16)).lower()},
    ).start(params={"config": config.to_dict(), "variant": variant.as_dict(), "stage": stage},
            resuming=run.saved_at is not None)
    began = time.perf_counter()
    try:
        run.train(tracker, progress)
        run.complete()
        tracker.log_metrics({"stage/wall_time_s": time.perf_counter() - began}, step=run.session.episode)
        tracker.log_artifact(run.out, "checkpoints")
        tracker.log_artifact(run.metrics_path, "metrics")
        tracker.finish()
    except KeyboardInterrupt as err:
        tracker.finish("KILLED")
        raise Interrupted(run.stopped(err)) from None
    except BaseException:
        tracker.finish("FAILED")
        raise
    return run.out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one curriculum stage.")
    add_common_arguments(parser)
    parser.add_argument("--stage", required=True, help="stage name from curriculum.stages")
    parser.add_argument("--init", type=Path, default=None, help="previous stage's checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--max-corporate-tax", type=float, default=None,
                        help="learned government: corporate rates above this stay masked for the whole run")
    args = parser.parse_args(argv)
    return run_command(lambda: _main(args), f"stage {args.stage!r} stopped before its first episode; nothing was "
                                            "written: run the same command again")


def _main(args: argparse.Namespace) -> int:
    kind = "ablation_train" if args.stage == ABLATION else "train"
    config = load_experiment(args.config, args.overrides, args.economy, args.seed, kind)
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
            corporate = "" if args.fixed_corporate_tax is None else f" --fixed-corporate-tax {args.fixed_corporate_tax}"
            raise ConfigError(f"--fixed-tax {args.fixed_tax}{corporate}: {err}") from None
    run_stage(config, args.stage, args.out, args.init, variant, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
