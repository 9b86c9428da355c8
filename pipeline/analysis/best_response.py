"""`python -m pipeline.analysis.best_response`: how much can one agent type, or one agent, gain against the frozen others?

    python -m pipeline.analysis.best_response --config CONFIG --ckpt CKPT --type consumer|firm|government --out DIR
        [--learner NAME] [--start trained|untrained] [--agent INDEX]

The learned profile is an epsilon-meta-equilibrium if no type can raise its reward by more than
epsilon by changing its shared policy while the other types stay fixed (spec 8). This trains only
the chosen type from the checkpoint, with fresh optimizers and one of the configured best-response
learners (by default the reference code's: vanilla policy gradient, entropy 0.05, no action masks,
full labor disutility), and measures the type's reward before and after with evaluation rollouts
that share their random numbers (paired gains with 95% intervals), plus the learning curve.

Three questions share the procedure:
- the type's best response (`--start trained`, the default): the epsilon of the paper's Table 3;
- its power (`--start untrained`): the same search from a freshly initialized network of the type,
  against the trained others, must find a large gain, or a small gap above says nothing;
- an individual deviation (`--agent INDEX`): one agent alone gets its own copy of the type's network
  and trains it while every other agent, its own type included, keeps the shared policy.
With `best_response.select_every`, the policy is evaluated during the search on random numbers of its
own and the best one seen, the starting policy included, is the one measured at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import io
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from envs.rbc.config import ConfigError

from ..config import GROUPS, ExperimentConfig
from ..learning.algorithms import TrainingDiverged
from ..learning.command import Interrupted, run_command, stop_reason
from ..learning.curriculum import EpisodePlan
from ..learning.deviation import IndividualDeviation
from ..learning.files import atomic_write_text, check_output_dir
from ..learning.metrics import mean_ci95
from ..profiles import add_config_arguments, load_experiment
from ..tracking import Tracker
from .evaluate import evaluate_session, final_plan, session_from_checkpoint

STARTS = ("trained", "untrained")
# Offsets of the random streams from the training seed: evaluation, selection, the untrained network, learning.
EVAL_SEED, SELECT_SEED, INIT_SEED, LEARN_SEED = 7_919, 15_485_863, 0, 104_729


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


def agent_reward(group: str, agent: int):
    """Samples of one agent's episode return, beside the type's mean (`reward/<group>/agent<i>`)."""
    def samples(data) -> dict[str, torch.Tensor]:
        reward = data.get(("next", group, "reward"))[..., agent, 0]  # (E, T)
        return {f"reward/{group}/agent{agent}": reward.sum(-1)}

    return samples


def _evaluate(session, plan: EpisodePlan, episodes: int, seed: int, extra=None) -> dict:
    """Evaluation with a fixed seed, so evaluations of two policies share their random numbers."""
    torch.manual_seed(seed)
    return evaluate_session(session, plan, episodes, keep_trajectory=False, extra=extra)


def reinitialize(network: torch.nn.Module, seed: int) -> None:
    """Fresh parameters for every layer of `network`, drawn from their own seeded stream."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for module in network.modules():
            if hasattr(module, "reset_parameters") and module is not network:
                module.reset_parameters()


@contextlib.contextmanager
def untrained(session, group: str, seed: int):
    """Temporarily give `group` a freshly initialized network (the reference point of the training gain)."""
    network = session.policies[group].network
    saved = {k: v.clone() for k, v in network.state_dict().items()}
    reinitialize(network, seed)
    try:
        yield
    finally:
        network.load_state_dict(saved)


class BestSoFar:
    """The best policy seen during a search, by its mean reward on the selection episodes."""

    def __init__(self, network: torch.nn.Module, score: float, episode: int = 0):
        self.network = network
        self.state = copy.deepcopy(network.state_dict())
        self.score, self.episode = score, episode
        self.trace = [{"episode": episode, "score": score}]

    def offer(self, score: float, episode: int) -> None:
        self.trace.append({"episode": episode, "score": score})
        if score > self.score:
            self.state = copy.deepcopy(self.network.state_dict())
            self.score, self.episode = score, episode

    def restore(self) -> None:
        self.network.load_state_dict(self.state)


def _search(session, plan, config, group, key, episodes, extra, tracker, progress):
    """Train the type for `episodes`, offering the policy to selection every `select_every` episodes."""
    br = config.best_response
    evaluation_plan = EpisodePlan(**{**plan.__dict__, "train": ()})
    select_seed = config.training.seed + SELECT_SEED

    def score() -> float:
        with torch.random.fork_rng():
            result = _evaluate(session, evaluation_plan, br.select_episodes, select_seed, extra)
        return result["metrics"][key]["mean"]

    best = BestSoFar(session.policies[group].network, score() if br.select_every else float("nan"))
    curve: list[dict] = []
    start = session.episode
    bar = tqdm(range(episodes), desc=f"best response {group}", unit="ep", disable=not progress, mininterval=2.0,
               file=sys.stderr)
    try:
        for i in bar:
            data, metrics = session.run_episode(EpisodePlan(**{**plan.__dict__, "episode": start + i}),
                                                adapt_penalties=False)
            if extra is not None:
                metrics.update({k: float(v.mean()) for k, v in extra(data).items()})
            curve.append({"episode": i, **metrics})
            if i % config.tracking.log_every == 0 or i == episodes - 1:
                tracker.log_metrics(dict(metrics), step=i)
            if br.select_every and (i + 1) % br.select_every == 0:
                best.offer(score(), i + 1)
            bar.set_postfix(reward=f"{metrics[key]:.4g}", refresh=False)
    except (KeyboardInterrupt, TrainingDiverged) as err:
        raise _stopped(err, session, group, len(curve), episodes, tracker) from None
    finally:
        bar.close()
    if br.select_every:
        best.restore()
    else:
        best.episode = episodes
    return curve, best


def _stopped(err: BaseException, session, group: str, done: int, episodes: int, tracker: Tracker) -> BaseException:
    """One line for a search that could not finish: where it stopped, and what to do."""
    if isinstance(err, KeyboardInterrupt):
        tracker.finish("KILLED")
        return Interrupted(f"{stop_reason(err)} at episode {done} of {episodes} of the {group} best response; it "
                           "keeps no resume checkpoint: run the same command again to start it over")
    tracker.finish("FAILED")
    rate = session.learners[group].optimizer.param_groups[0]["lr"]
    return TrainingDiverged(f"the {group} best response diverged at its episode {done}: {err}; lower its learner's "
                            f"learning rate for {group} (now {rate:g}, best_response) and run again", group)


def _curve_summary(curve: list[dict], key: str, window: int) -> dict:
    rewards = [row[key] for row in curve]
    first = sum(rewards[:window]) / window
    last = sum(rewards[-window:]) / window
    previous = rewards[-2 * window : -window] or rewards[:window]
    return {"curve_start": first, "curve_end": last, "curve_end_change": last - sum(previous) / len(previous),
            "window": window}


def _prepare(session, config: ExperimentConfig, group: str, start: str, agent: int | None, learner_name):
    """The session as the search starts: the type's starting network, the deviating agent, fresh learners."""
    if start == "untrained":
        reinitialize(session.policies[group].network, config.training.seed + INIT_SEED)
    if agent is not None:
        shared = session.policies[group].network
        session.replace_network(group, IndividualDeviation(shared, agent, session.layouts[group].n_agents))
    learner = config.best_response.learner(learner_name, individual=agent is not None)
    rates = {g: learner.learning_rate[g] for g in GROUPS}
    # An agent deviating alone learns from its own reward whatever the learner's setting: it is its objective.
    type_reward = learner.reward == "type" and agent is None
    session.learners = session.make_learners(learner.algorithm, learner.ppo_epochs, rates, type_reward,
                                             learner.value_coef)
    return learner


def _check_deviator(session, group: str, agent: int | None) -> None:
    """The deviating type must learn in this checkpoint, and a deviating agent must be one of its agents."""
    if group in session.fixed:
        raise ConfigError(f"--type {group}: this checkpoint's {group} is a fixed policy (a baseline); it has no best response")
    n_agents = session.layouts[group].n_agents
    if agent is not None and not 0 <= agent < n_agents:
        raise ConfigError(f"--agent {agent} is not an agent of type {group}; allowed: 0..{n_agents - 1}")


def _write_and_log(out: Path, result: dict, curve: list[dict], tracker: Tracker) -> None:
    """The result and its search curve, written atomically and logged to the rule's run."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(curve[0]))
    writer.writeheader()
    writer.writerows(curve)
    atomic_write_text(out / "curve.csv", text.getvalue())
    atomic_write_text(out / "best_response.json", json.dumps(result, indent=2))
    tracker.log_metrics({"best_response/gain": result["gain"]["mean"], "best_response/before": result["before"]["mean"],
                         "best_response/after": result["after"]["mean"]}, step=result["episodes"])
    tracker.log_artifact(out / "best_response.json", "best_response")
    tracker.log_artifact(out / "curve.csv", "best_response")
    tracker.finish()


def run_best_response(config: ExperimentConfig, ckpt: Path, group: str, out: Path, episodes: int | None = None,
                      progress: bool = True, learner: str | None = None, start: str = "trained",
                      agent: int | None = None) -> dict:
    br = config.best_response
    if start not in STARTS:
        raise ConfigError(f"--start {start!r} is invalid; allowed: {' | '.join(STARTS)}")
    session, _ = session_from_checkpoint(config, ckpt)
    _check_deviator(session, group, agent)
    episodes = episodes or br.episodes
    extra = agent_reward(group, agent) if agent is not None else None
    key = f"reward/{group}/agent{agent}" if agent is not None else f"reward/{group}"
    eval_seed = config.training.seed + EVAL_SEED
    plan = best_response_plan(session, config, group, session.episode)
    evaluation_plan = EpisodePlan(**{**plan.__dict__, "train": ()})
    trained = _evaluate(session, evaluation_plan, br.eval_episodes, eval_seed, extra)
    with untrained(session, group, config.training.seed + INIT_SEED):
        reference = _evaluate(session, evaluation_plan, br.eval_episodes, eval_seed, extra)
    settings = _prepare(session, config, group, start, agent, learner)
    before = trained if start == "trained" else reference
    torch.manual_seed(config.training.seed + LEARN_SEED)

    # The rule's identity: the branch, the type and the probe, named as the workflow's plan names them.
    name = learner or br.learner_names()[0]
    probe = "power" if start == "untrained" else (f"agent_{name}" if agent is not None else name)
    rule = f"best_response:{session.variant.label()}:{group}:{probe}"
    tracker = Tracker(config.tracking, rule=rule, tags={"dge.kind": "best_response", "dge.type": group}).start(
        params={"checkpoint": str(ckpt), "type": group, "best_response": config.best_response.__dict__,
                "start": start, "agent": agent}
    )
    curve, best = _search(session, plan, config, group, key, episodes, extra, tracker, progress)
    after = _evaluate(session, evaluation_plan, br.eval_episodes, eval_seed, extra)
    result = {
        "type": group,
        "checkpoint": str(ckpt),
        "episodes": episodes,
        "probe": probe,
        "learner": name,
        "algorithm": settings.algorithm,
        "learning_rate": settings.learning_rate[group],
        "entropy_coef": settings.entropy_coef,
        "reward_signal": "own" if agent is not None else settings.reward,
        "start": start,
        "agent": agent,
        "metric": key,
        "before": before["metrics"][key],
        "after": after["metrics"][key],
        "gain": _paired_gain(after, before, key),
        "untrained": reference["metrics"][key],
        "trained": trained["metrics"][key],
        "training_gain_vs_untrained": _paired_gain(trained, reference, key),
        "selected_episode": best.episode,
        "selection": best.trace,
        **_curve_summary(curve, key, min(br.window, max(episodes // 2, 1))),
        "before_metrics": {k: v["mean"] for k, v in before["metrics"].items()},
        "after_metrics": {k: v["mean"] for k, v in after["metrics"].items()},
    }
    _write_and_log(out, result, curve, tracker)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Best response of one agent type (or one agent) against the frozen others.")
    add_config_arguments(parser)
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--type", required=True, choices=GROUPS)
    parser.add_argument("--out", type=Path, required=True, help="directory for best_response.json and curve.csv")
    parser.add_argument("--episodes", type=int, default=None, help="default: best_response.episodes")
    parser.add_argument("--learner", default=None, help="one of best_response.learners (default: the first)")
    parser.add_argument("--start", default="trained", choices=STARTS,
                        help="untrained: search from a fresh network of the type (the power check)")
    parser.add_argument("--agent", type=int, default=None,
                        help="only this agent of the type deviates, with its own copy of the network")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return run_command(lambda: _main(args), f"the {args.type} best response stopped before it finished; it keeps "
                                            "no resume checkpoint: run the same command again to start it over")


def _main(args: argparse.Namespace) -> int:
    config = load_experiment(args.config, args.overrides, args.economy, args.seed, "best_response")
    check_output_dir(args.out / "best_response.json")
    result = run_best_response(config, args.ckpt, args.type, args.out, args.episodes, not args.no_progress,
                               args.learner, args.start, args.agent)
    gain = result["gain"]
    print(f"{args.type}: before {result['before']['mean']:.4g}, after {result['after']['mean']:.4g}, "
          f"gain {gain['mean']:.4g} [{gain['ci95'][0]:.4g}, {gain['ci95'][1]:.4g}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
