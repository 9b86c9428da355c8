"""A training session: the economy, the three type policies, their learners, and their state.

Training, best response and evaluation all run episodes the same way: apply the episode's plan
(masks, disutility anneal) to the environment, collect one episode of every economy with the
joint policy, update the types that train, and report the episode's metrics. The session's
complete state (networks, optimizers, episode counter, RNG, no-Ponzi multipliers) goes into and
comes out of a checkpoint, so a resumed run continues bit-identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictSequential
from torchrl.envs.utils import ExplorationType, set_exploration_type

from envs.rbc.actions import fixed_tax_action
from envs.rbc.config import ConfigError
from envs.rbc.env import RBCEnv

from ..config import GROUPS, ExperimentConfig
from .algorithms import GroupLearner
from .curriculum import EpisodePlan
from .metrics import episode_metrics
from .policies import FixedAction, TypePolicy, build_policies, group_layouts


@dataclass(frozen=True)
class Variant:
    """How a pipeline branch differs from its config: fixed taxes, or another welfare objective.

    `fixed_tax` is the fixed income tax rate, and the corporate rate too unless `fixed_corporate_tax`
    sets that one apart (the income x corporate grid of fixed-tax baselines).
    """

    fixed_tax: float | None = None
    welfare: str | None = None
    max_corporate_tax: float | None = None  # a learned government's corporate rates above this are masked
    fixed_corporate_tax: float | None = None

    def __post_init__(self):
        if self.fixed_corporate_tax is not None and self.fixed_tax is None:
            raise ValueError("fixed_corporate_tax sets a fixed-tax baseline's corporate rate: give fixed_tax too")

    @property
    def fixed_rates(self) -> tuple[float, float] | None:
        """(income, corporate) tax rates of a fixed-tax baseline; None for a learned government."""
        if self.fixed_tax is None:
            return None
        corporate = self.fixed_tax if self.fixed_corporate_tax is None else self.fixed_corporate_tax
        return self.fixed_tax, corporate

    def as_dict(self) -> dict:
        data = {"fixed_tax": self.fixed_tax, "welfare": self.welfare}
        # Absent when unused, as in checkpoints that predate them.
        if self.max_corporate_tax is not None:
            data["max_corporate_tax"] = self.max_corporate_tax
        if self.fixed_corporate_tax is not None:
            data["fixed_corporate_tax"] = self.fixed_corporate_tax
        return data

    def label(self) -> str:
        """The branch's name in run ids and tags: "learned", "fixed20", "fixed00c40", "consumer_only", ..."""
        parts = []
        if self.fixed_rates is not None:
            parts.append(fixed_tax_label(*self.fixed_rates))
        if self.welfare is not None:
            parts.append(self.welfare)
        if self.max_corporate_tax is not None:
            parts.append(f"corporate{round(self.max_corporate_tax * 100):02d}")
        return "-".join(parts) or "learned"


def fixed_tax_label(income: float, corporate: float) -> str:
    """"fixed20" for equal rates (the paper's baselines), "fixed00c40" for income 0% and corporate 40%."""
    label = f"fixed{round(income * 100):02d}"
    return label if abs(income - corporate) < 1e-9 else f"{label}c{round(corporate * 100):02d}"


def check_device(device: str) -> None:
    """A CUDA device this torch cannot use is a bad config value (torch itself fails with an AssertionError)."""
    if not device.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        why = "this torch was built without CUDA" if torch.version.cuda is None else "torch sees no CUDA device"
        raise ConfigError(f"invalid config: training.device={device!r} ({why}, torch {torch.__version__}); "
                          "allowed: 'cpu' here")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"invalid config: training.device={device!r} (torch sees {count} GPU(s)); "
                          f"allowed: 'cpu' or 'cuda:N' with N < {count}")


class Session:
    def __init__(
        self,
        config: ExperimentConfig,
        variant: Variant = Variant(),
        num_envs: int | None = None,
        fixed_actions: dict | None = None,
    ):
        """`fixed_actions` freezes groups at one deterministic action each (group -> one agent's action)."""
        self.config = config
        self.variant = variant
        training = config.training
        check_device(training.device)
        if training.threads:
            torch.set_num_threads(training.threads)
        torch.manual_seed(training.seed)
        economy = config.economy if variant.welfare is None else config.economy.replace(welfare=variant.welfare)
        self.economy = economy
        self.env = RBCEnv(
            economy, num_envs=num_envs or training.num_envs, device=training.device, seed=training.seed,
            backend=training.backend,
        )
        self.policies = build_policies(self.env, config.policy.options(), config.policy.factory)
        self.layouts = group_layouts(self.env)
        fixed_actions = dict(fixed_actions or {})
        if variant.fixed_rates is not None:
            fixed_actions["government"] = fixed_tax_action(economy, *variant.fixed_rates)
        sizes = {"consumer": economy.n_consumers, "firm": economy.n_firms, "government": 1}
        self.fixed = {g: FixedAction(g, sizes[g], a) for g, a in fixed_actions.items()}
        self._join_policies()
        self.learners = self.make_learners(training.algorithm, training.ppo_epochs, training.learning_rate)
        self.episode = 0
        self.no_ponzi = {g: s.initial for g, s in config.curriculum.no_ponzi.items()}
        self.env.set_no_ponzi_multipliers(**self.no_ponzi)

    def _join_policies(self) -> None:
        self.joint_policy = TensorDictSequential(
            *[self.fixed[g] if g in self.fixed else self.policies[g].collector for g in GROUPS]
        )

    def replace_network(self, group: str, network: torch.nn.Module) -> None:
        """Play `group` with another network from now on (an individual deviation, say).

        Learners hold the old network's parameters: make new ones (`make_learners`) before training.
        """
        self.policies[group] = TypePolicy(self.layouts[group], network)
        self._join_policies()

    def make_learners(self, algorithm: str, epochs: int, learning_rates: dict[str, float],
                      type_reward: bool = False, value_coef: float | None = None) -> dict[str, GroupLearner]:
        t = self.config.training
        return {
            g: GroupLearner(
                self.policies[g],
                algorithm=algorithm,
                epochs=epochs,
                learning_rate=learning_rates[g],
                reward_scale=t.reward_scale[g],
                gamma=t.gamma,
                gae_lambda=t.gae_lambda,
                clip_epsilon=t.clip_epsilon,
                value_clip=t.value_clip,
                value_coef=t.value_coef if value_coef is None else value_coef,
                max_grad_norm=t.max_grad_norm,
                type_reward=type_reward,
            )
            for g in GROUPS
        }

    # ------------------------------------------------------------------ episodes
    def apply(self, plan: EpisodePlan) -> None:
        """Masks and the disutility anneal of the episode; a fixed group's action is always allowed."""
        for group, mask in (("firm", plan.firm_mask), ("government", plan.government_mask)):
            mask = mask.to(self.env.device)
            self.env.set_action_mask(group, torch.ones_like(mask) if group in self.fixed else mask)
        self.env.set_labor_disutility_anneal(plan.labor_disutility_anneal)

    def collect(self, deterministic: bool = False) -> TensorDictBase:
        exploration = ExplorationType.DETERMINISTIC if deterministic else ExplorationType.RANDOM
        with torch.no_grad(), set_exploration_type(exploration):
            return self.env.rollout(
                self.economy.episode_length, self.joint_policy, break_when_any_done=False, auto_reset=True
            )

    def run_episode(
        self, plan: EpisodePlan, learn: bool = True, adapt_penalties: bool = True
    ) -> tuple[TensorDictBase, dict[str, float]]:
        """One episode of every economy; with `learn`, an update of the plan's training types and (unless
        `adapt_penalties` is off, as for a best response against a frozen economy) of the no-Ponzi multipliers."""
        self.apply(plan)
        data = self.collect()
        metrics = episode_metrics(data, self.economy)
        if learn:
            for group in plan.train:
                if group in self.fixed:
                    continue
                metrics.update(self.learners[group].update(data, plan.entropy[group]))
            if adapt_penalties:
                self._update_no_ponzi(data)
        self.episode += 1
        return data, metrics

    def _update_no_ponzi(self, data: TensorDictBase) -> None:
        """Spec 5.4: lambda <- lambda + rate * mean(max(-B_final, 0) / scale), per type."""
        schedules = self.config.curriculum.no_ponzi
        scales = {"consumer": self.economy.consumer_penalty_scale, "firm": self.economy.firm_penalty_scale}
        changed = False
        for group, schedule in schedules.items():
            if schedule.rate == 0:
                continue
            final_budget = data.get(("next", group, "budget"))[:, -1]
            debt = (-final_budget).clamp_min(0).mean().item() / scales[group]
            self.no_ponzi[group] += schedule.rate * debt
            changed = True
        if changed:
            self.env.set_no_ponzi_multipliers(**self.no_ponzi)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "episode": self.episode,
            "networks": {g: self.policies[g].network.state_dict() for g in GROUPS},
            "optimizers": {g: self.learners[g].optimizer.state_dict() for g in GROUPS},
            "rng": torch.get_rng_state(),
            "no_ponzi": dict(self.no_ponzi),
            "variant": self.variant.as_dict(),
        }

    def load_state_dict(self, state: dict, optimizers: bool = True) -> None:
        for g in GROUPS:
            self.policies[g].network.load_state_dict(state["networks"][g])
            if optimizers:
                self.learners[g].optimizer.load_state_dict(state["optimizers"][g])
                # Adam's saved param groups carry the learning rate they were saved with; the config
                # that runs now decides it.
                self.learners[g].set_learning_rate(self.config.training.learning_rate[g])
        self.episode = int(state["episode"])
        torch.set_rng_state(state["rng"])
        self.no_ponzi = {k: float(v) for k, v in state["no_ponzi"].items()}
        self.env.set_no_ponzi_multipliers(**self.no_ponzi)
