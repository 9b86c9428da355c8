"""RBCEnv trained with TorchRL's own pieces: MultiAgentMLP actors and centralised critics, a Collector, MAPPOLoss.

    ./run python examples/torchrl_mappo.py --iterations 3

A small economy (4 consumers, 2 firms, 8 economies at once) and one MAPPO learner per agent group,
the way TorchRL's multi-agent examples train a single group. What RBCEnv asks of such a script:
- every group has its own keys (`(group, "action")`, `(group, "reward")`, ...), so each loss is told
  them with `set_keys`, and `MultiAgentGAE` (MAPPOLoss's default estimator) spreads the root `done`
  over the agents;
- the global observation sits once per economy at the root: each agent's input is it joined to the
  agent's private observation (the government's observation already is the global one);
- actions are masked: the firms' and the government's actors use TorchRL's MaskedCategorical, the
  consumers' the project's MultiHeadCategorical, whose 12 heads (padded to 11 choices) make one
  event, so PPO's ratio is per consumer; both read the mask from `(group, "action_mask")`;
- rewards differ by orders of magnitude between groups: RewardScaling brings each near 1.
The project's own trainer (pipeline.learning) does the same with a curriculum and more speed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.collectors import Collector
from torchrl.envs import Compose, RewardScaling, TransformedEnv
from torchrl.modules import MaskedCategorical, MultiAgentMLP, ProbabilisticActor, ValueOperator
from torchrl.objectives.multiagent import MAPPOLoss

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs import RBCConfig, RBCEnv  # noqa: E402
from envs.rbc.actions import firm_mask_from_ranges  # noqa: E402
from pipeline.learning.distributions import MultiHeadCategorical  # noqa: E402

GROUPS = ("consumer", "firm", "government")
REWARD_SCALE = {"consumer": 5.0, "firm": 30000.0, "government": 1000.0}  # the project's training.reward_scale


def agent_inputs(group: str) -> TensorDictModule:
    """(group, "input"): what each agent of the group sees, global state first."""
    if group == "government":
        return TensorDictModule(nn.Identity(), in_keys=[(group, "observation")], out_keys=[(group, "input")])

    def join(global_obs, own):
        return torch.cat([global_obs.unsqueeze(-2).expand(*own.shape[:-1], -1), own], dim=-1)

    return TensorDictModule(join, in_keys=["global_observation", (group, "observation")], out_keys=[(group, "input")])


def actor_and_critic(env: RBCEnv, group: str, width: int = 64):
    n_agents = len(env.group_map[group])
    width_in = env.encoder.global_dim + (0 if group == "government" else env.full_observation_spec[group, "observation"].shape[-1])
    logits_shape = tuple(env.action_mask(group).shape)  # (heads, widest choice) for consumers, (actions,) otherwise
    logits = nn.Sequential(
        MultiAgentMLP(width_in, math.prod(logits_shape), n_agents, centralised=False, share_params=True,
                      depth=2, num_cells=width),
        nn.Unflatten(-1, logits_shape),
    )
    actor = ProbabilisticActor(
        TensorDictSequential(agent_inputs(group), TensorDictModule(logits, [(group, "input")], [(group, "logits")])),
        in_keys={"logits": (group, "logits"), "mask": (group, "action_mask")},
        out_keys=[(group, "action")],
        distribution_class=MultiHeadCategorical if group == "consumer" else MaskedCategorical,
        return_log_prob=True,
        log_prob_key=(group, "log_prob"),
    )
    value = MultiAgentMLP(width_in, 1, n_agents, centralised=True, share_params=True, depth=2, num_cells=width)
    critic = TensorDictSequential(
        agent_inputs(group), ValueOperator(value, in_keys=[(group, "input")], out_keys=[(group, "state_value")])
    )
    return actor, critic


def mappo_loss(actor, critic, group: str) -> MAPPOLoss:
    loss = MAPPOLoss(actor, critic, clip_epsilon=0.2, entropy_coeff=0.01)
    loss.set_keys(
        action=(group, "action"), sample_log_prob=(group, "log_prob"), reward=(group, "reward"),
        value=(group, "state_value"), advantage=(group, "advantage"), value_target=(group, "value_target"),
        done="done", terminated="terminated",
    )
    loss.make_value_estimator(gamma=0.99, lmbda=0.95)
    return loss


def train(iterations: int = 3, num_envs: int = 8, epochs: int = 4, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    config = RBCConfig(n_consumers=4, n_firms=2)
    base = RBCEnv(config, num_envs=num_envs, seed=seed)
    # a curriculum-style mask: firms may only post prices 500..1500 and wages 11..33
    base.set_action_mask("firm", firm_mask_from_ranges(config, (500, 1500), (11, 33)))
    env = TransformedEnv(base, Compose(*(
        RewardScaling(loc=0.0, scale=1.0 / REWARD_SCALE[g], in_keys=[(g, "reward")]) for g in GROUPS
    )))
    pieces = {group: actor_and_critic(base, group) for group in GROUPS}
    losses = {group: mappo_loss(actor, critic, group) for group, (actor, critic) in pieces.items()}
    optimizers = {group: torch.optim.Adam(loss.parameters(), lr=3e-4) for group, loss in losses.items()}
    policy = TensorDictSequential(*(actor for actor, _ in pieces.values()))
    frames = num_envs * config.episode_length  # one episode of every economy per iteration
    collector = Collector(env, policy, frames_per_batch=frames, total_frames=iterations * frames,
                          auto_register_policy_transforms=True)
    initial = {group: [p.detach().clone() for p in loss.parameters()] for group, loss in losses.items()}

    history = []
    for batch in collector:
        row = {"frames": batch.numel(), "firm_actions": batch["firm", "action"].unique().tolist()}
        for group in GROUPS:
            loss = losses[group]
            with torch.no_grad():
                loss.value_estimator(batch, params=loss.critic_network_params, target_params=loss.target_critic_network_params)
            for _ in range(epochs):
                terms = loss(batch)
                total = terms["loss_objective"] + terms["loss_critic"] + terms["loss_entropy"]
                optimizers[group].zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_(loss.parameters(), 1.0)
                optimizers[group].step()
            row[f"{group}/loss"] = float(total.detach())
            row[f"{group}/reward"] = float(batch["next", group, "reward"].mean())
        collector.update_policy_weights_()
        history.append(row)
        print(" ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)))
    collector.shutdown()
    moved = {group: math.sqrt(sum(float((p.detach() - p0).pow(2).sum()) for p, p0 in zip(loss.parameters(), initial[group])))
             for group, loss in losses.items()}
    print("parameter change (L2): " + " ".join(f"{g}={v:.3g}" for g, v in moved.items()))
    return {"history": history, "moved": moved}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args(argv)
    train(args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
