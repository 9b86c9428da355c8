"""Per-group learners: PPO (TorchRL's ClipPPOLoss) or vanilla policy gradient, with GAE returns.

Each agent type gets its own loss module, value estimator and Adam optimizer, with every key
namespaced under the group (`(group, "advantage")`, ...), so the groups never overwrite each
other's data in the shared rollout.

Policy gradient with a learned baseline is ClipPPOLoss taking a single full-batch step per
episode without value clipping: at that step the probability ratio is exactly 1, so the clipped
surrogate's gradient is the REINFORCE gradient -A * grad log pi (spec 7.1, "PG loss").
"""

from __future__ import annotations

import warnings

import torch
from tensordict import TensorDictBase
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import MultiAgentGAE

from .policies import TypePolicy

# ClipPPOLoss warns when advantages are standardized over the agent dimension too; the spec
# standardizes over the whole batch of a type (envs x steps x agents), which is what we want.
warnings.filterwarnings("ignore", message="You requested advantage normalization", category=UserWarning)


class TrainingDiverged(RuntimeError):
    """A loss or gradient stopped being a finite number: every later update would only spread NaN or inf."""

    def __init__(self, message: str, group: str):
        super().__init__(message)
        self.group = group


class GroupLearner:
    """Loss, returns and optimizer of one agent type."""

    def __init__(
        self,
        policy: TypePolicy,
        *,
        algorithm: str,
        epochs: int,
        learning_rate: float,
        reward_scale: float,
        gamma: float,
        gae_lambda: float,
        clip_epsilon: float,
        value_clip: bool,
        value_coef: float,
        max_grad_norm: float,
        type_reward: bool = False,
    ):
        group = policy.layout.group
        self.group = group
        self.policy = policy
        self.algorithm = algorithm
        self.type_reward = type_reward
        self.epochs = 1 if algorithm == "pg" else epochs
        self.reward_scale = reward_scale
        self.max_grad_norm = max_grad_norm
        self.loss = ClipPPOLoss(
            policy.actor,
            policy.critic,
            clip_epsilon=clip_epsilon,
            entropy_bonus=True,
            entropy_coeff=0.0,
            critic_coeff=value_coef,
            loss_critic_type="smooth_l1",
            normalize_advantage=True,
            clip_value=clip_epsilon if (value_clip and algorithm == "ppo") else None,
            functional=False,
        )
        keys = dict(
            advantage=(group, "advantage"),
            value_target=(group, "value_target"),
            value=(group, "state_value"),
        )
        self.loss.set_keys(action=(group, "action"), sample_log_prob=(group, "log_prob"), **keys)
        self.returns = MultiAgentGAE(gamma=gamma, lmbda=gae_lambda, value_network=None, agent_dim=-2)
        self.returns.set_keys(reward=(group, "scaled_reward"), done="done", terminated="terminated", **keys)
        self.parameters = list(policy.network.parameters())
        self.optimizer = torch.optim.Adam(self.parameters, lr=learning_rate)

    def set_learning_rate(self, value: float) -> None:
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = value

    def advantages(self, batch: TensorDictBase) -> None:
        """Scaled rewards, next-state values and GAE, written into `batch` under the group.

        With `type_reward`, every agent learns from its type's mean reward instead of its own: the gradient of
        the shared policy's own objective when all agents of the type move together (a best response of the
        type, spec 8), where each agent's own reward gives the independent learners' gradient instead.
        """
        g = self.group
        reward = batch.get(("next", g, "reward"))
        if self.type_reward:
            reward = reward.mean(dim=-2, keepdim=True).expand_as(reward)
        batch.set(("next", g, "scaled_reward"), reward / self.reward_scale)
        value = batch.get((g, "state_value"))
        next_value = torch.zeros_like(value)
        next_value[:, :-1] = value[:, 1:]  # episodes end at T: the terminal value is masked anyway
        batch.set(("next", g, "state_value"), next_value)
        with torch.no_grad():
            self.returns(batch)

    def update(self, batch: TensorDictBase, entropy_coef: float) -> dict[str, float]:
        """Full-batch epochs on one episode's rollout; returns the last epoch's diagnostics."""
        self.advantages(batch)
        self.loss.entropy_coeff.fill_(entropy_coef)
        for _ in range(self.epochs):
            out = self.loss(batch)
            critic = out.get("loss_critic", None)  # absent when the critic's weight is 0
            total = out["loss_objective"] + out["loss_entropy"] + (0.0 if critic is None else critic)
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
            if not bool(torch.isfinite(total) & torch.isfinite(grad_norm)):  # before the step spreads it
                raise TrainingDiverged(
                    f"the {self.group} loss or gradient is not finite (loss {float(total.detach()):.4g}, "
                    f"gradient norm {float(grad_norm):.4g})", self.group)
            self.optimizer.step()
        g = self.group
        return {
            f"loss/{g}/objective": float(out["loss_objective"].detach()),
            f"loss/{g}/critic": float("nan") if critic is None else float(critic.detach()),
            f"loss/{g}/entropy": float(out["entropy"]),
            f"loss/{g}/kl_approx": float(out["kl_approx"]),
            f"loss/{g}/clip_fraction": float(out["clip_fraction"]),
            f"loss/{g}/grad_norm": float(grad_norm),
        }
