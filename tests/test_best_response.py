"""The best-response procedure against things known without it.

- an unchanged policy, evaluated before and after, gains exactly 0 (common random numbers);
- the search keeps the best policy it has seen, the starting one included;
- an individual deviation changes one agent's policy and nobody else's;
- from a fresh government network the search finds a large gain towards the best constant tax, which
  is found independently by evaluating every constant tax action.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.analysis.best_response import BestSoFar, _evaluate, _paired_gain, best_response_plan, run_best_response
from pipeline.analysis.evaluate import evaluate_session
from pipeline.learning.checkpoint import load_checkpoint, save_checkpoint
from pipeline.learning.curriculum import EpisodePlan
from pipeline.learning.deviation import IndividualDeviation
from envs.rbc.config import ConfigError
from pipeline.learning.session import Session

from pipeline_support import small_config

SINGLE_STAGE = {
    "stages": [{"name": "consumers", "episodes": 2, "train": ["consumer"]}],
    "firm_mask": None,
    "tax_mask": None,
    "labor_disutility_decay": None,
}


def checkpoint_of(session: Session, path) -> str:
    save_checkpoint({"config": session.config.to_dict(), "stage": "consumers", "stage_complete": True,
                     "session": session.state_dict()}, path)
    return path


def test_an_unchanged_policy_is_evaluated_on_the_same_random_numbers():
    session = Session(small_config(training={"num_envs": 4}))
    plan = best_response_plan(session, session.config, "consumer", 0)
    plan = EpisodePlan(**{**plan.__dict__, "train": ()})
    before = _evaluate(session, plan, 3, seed=11)
    torch.manual_seed(999)  # whatever ran in between
    after = _evaluate(session, plan, 3, seed=11)
    gain = _paired_gain(after, before, "reward/consumer")
    assert gain["mean"] == 0.0 and gain["ci95"] == [0.0, 0.0] and gain["n"] == 12


@pytest.mark.parametrize("agent", [None, 1])
def test_a_search_that_cannot_move_gains_exactly_zero(tmp_path, agent):
    """A learner with learning rate 0 leaves the policy as it was: the whole procedure (selection evaluations,
    training episodes in between, the deviating agent's copy) must then report a gain of exactly 0."""
    config = small_config(
        training={"num_envs": 4},
        curriculum=SINGLE_STAGE,
        best_response={"episodes": 4, "eval_episodes": 2, "window": 2, "select_every": 2, "select_episodes": 1,
                       "learners": {"still": {"learning_rate": {"consumer": 0.0, "firm": 0.0, "government": 0.0}}}},
    )
    ckpt = checkpoint_of(Session(config), tmp_path / "start.pt")
    result = run_best_response(config, ckpt, "firm", tmp_path / "br", progress=False, agent=agent)
    assert result["gain"]["mean"] == 0.0 and result["gain"]["ci95"] == [0.0, 0.0]
    assert result["after"] == result["before"]
    assert result["metric"] == ("reward/firm" if agent is None else "reward/firm/agent1")


def test_an_agent_deviating_alone_learns_at_the_individual_rate(tmp_path):
    """With the learner moving the type but an individual rate of 0, one firm deviating alone cannot move:
    its gain is exactly 0 and the result names the rate it used."""
    config = small_config(
        training={"num_envs": 4},
        curriculum=SINGLE_STAGE,
        best_response={"episodes": 4, "eval_episodes": 2, "window": 2, "select_every": 0, "select_episodes": 1,
                       "learners": {"moving": {"learning_rate": {"consumer": 0.01, "firm": 0.01, "government": 0.01}}},
                       "individual_learning_rate": {"firm": 0.0}},
    )
    ckpt = checkpoint_of(Session(config), tmp_path / "start.pt")
    alone = run_best_response(config, ckpt, "firm", tmp_path / "alone", progress=False, agent=1)
    assert alone["learning_rate"] == 0.0
    assert alone["gain"]["mean"] == 0.0 and alone["after"] == alone["before"]
    whole = run_best_response(config, ckpt, "firm", tmp_path / "whole", progress=False)
    assert whole["learning_rate"] == 0.01 and whole["after"] != whole["before"]


def test_a_bad_individual_rate_names_its_key():
    with pytest.raises(ConfigError, match=r"best_response\.individual_learning_rate\.firm"):
        small_config(best_response={"individual_learning_rate": {"firm": -1.0}})


def test_the_search_keeps_the_best_policy_it_has_seen():
    network = nn.Linear(2, 1)
    start = {k: v.clone() for k, v in network.state_dict().items()}
    best = BestSoFar(network, score=5.0)
    with torch.no_grad():
        network.weight.add_(1.0)
    best.offer(4.0, episode=10)  # worse than the start: not kept
    with torch.no_grad():
        network.weight.add_(1.0)
    better = {k: v.clone() for k, v in network.state_dict().items()}
    best.offer(6.0, episode=20)
    with torch.no_grad():
        network.weight.add_(1.0)
    best.offer(5.5, episode=30)
    best.restore()
    assert best.episode == 20 and best.score == 6.0
    assert all(torch.equal(network.state_dict()[k], better[k]) for k in better)
    assert not torch.equal(better["weight"], start["weight"])
    assert [t["episode"] for t in best.trace] == [0, 10, 20, 30]


def test_an_individual_deviation_moves_one_agent_only():
    torch.manual_seed(0)
    shared = nn.Sequential(nn.Linear(3, 4))

    class Net(nn.Module):  # (global, private, mask) -> (logits (E, N, 4), value (E, N, 1)) like a factory's
        def __init__(self):
            super().__init__()
            self.body = shared

        def forward(self, global_obs, private_obs, mask):
            out = self.body(private_obs)
            return out, out[..., :1]

    base = Net()
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    deviation = IndividualDeviation(base, agent=2, n_agents=5)
    with torch.no_grad():
        for p in deviation.deviant.parameters():
            p.add_(0.5)
    obs = torch.randn(7, 5, 3)
    logits, value = deviation(None, obs, None)
    expected, _ = base(None, obs, None)
    others = [0, 1, 3, 4]
    assert torch.equal(logits[:, others], expected[:, others])
    assert not torch.allclose(logits[:, 2], expected[:, 2])
    assert torch.equal(logits[:, 2], deviation.deviant(None, obs, None)[0][:, 2])
    (logits.sum() + value.sum()).backward()
    assert all(p.grad is None for p in deviation.shared.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in deviation.deviant.parameters())
    assert all(torch.equal(base.state_dict()[k], frozen[k]) for k in frozen)
    with pytest.raises(ValueError, match="allowed: 0..4"):
        IndividualDeviation(base, agent=5, n_agents=5)


@pytest.mark.slow
def test_the_power_check_finds_the_way_to_the_best_constant_tax(tmp_path):
    """The consumers and firms of an (untrained) checkpoint are frozen; the government's best response is
    bounded below by the best of its 36 constant tax actions, found here by evaluating each of them on the
    same random numbers. Started from a fresh government network, the search must gain significantly and
    close at least half of the distance from its start to that best constant action."""
    config = small_config(
        training={"num_envs": 8, "seed": 3},
        curriculum=SINGLE_STAGE,
        best_response={"episodes": 150, "eval_episodes": 4, "window": 10, "select_every": 25, "select_episodes": 2,
                       "learners": {"pg": {"learning_rate": {"government": 0.01}}}},
    )
    ckpt = checkpoint_of(Session(config), tmp_path / "start.pt")
    payload = load_checkpoint(ckpt)
    constant = []
    for action in range(config.economy.n_government_actions):
        session = Session(config, fixed_actions={"government": action})
        session.load_state_dict(payload["session"], optimizers=False)
        plan = EpisodePlan(**{**best_response_plan(session, config, "government", 2).__dict__, "train": ()})
        torch.manual_seed(config.training.seed + 7_919)
        constant.append(evaluate_session(session, plan, 4, keep_trajectory=False)["metrics"]["reward/government"]["mean"])
    best_constant = max(constant)
    assert best_constant - min(constant) > 0  # the tax matters in this economy

    result = run_best_response(config, ckpt, "government", tmp_path / "power", progress=False, start="untrained")
    before, after, gain = result["before"]["mean"], result["after"]["mean"], result["gain"]
    assert before < best_constant
    assert gain["ci95"][0] > 0, result
    assert after - before >= 0.5 * (best_constant - before), (before, after, best_constant)


def test_a_type_reward_learner_gives_every_agent_its_types_mean_reward():
    session = Session(small_config(training={"num_envs": 3}))
    data = session.collect()
    own = session.make_learners("pg", 1, {"consumer": 1e-3, "firm": 1e-3, "government": 1e-3})["firm"]
    typed = session.make_learners("pg", 1, {"consumer": 1e-3, "firm": 1e-3, "government": 1e-3}, type_reward=True)["firm"]
    reward = data.get(("next", "firm", "reward"))  # (E, T, F, 1)
    scale = session.config.training.reward_scale["firm"]
    own.advantages(data)
    assert torch.equal(data.get(("next", "firm", "scaled_reward")), reward / scale)
    typed.advantages(data)
    by_hand = (reward[..., 0, :] + reward[..., 1, :]) / 2 / scale  # the small economy has two firms
    scaled = data.get(("next", "firm", "scaled_reward"))
    assert torch.allclose(scaled[..., 0, :], by_hand) and torch.allclose(scaled[..., 1, :], by_hand)


def test_a_learner_without_critic_loss_leaves_the_value_output_alone():
    """value_coef 0: the policy's objective still moves the trunk, but the value head's own weights (the last
    output unit, which only the critic loss reaches) keep their trained values."""
    session = Session(small_config(training={"num_envs": 3}))
    learner = session.make_learners("ppo", 2, {"consumer": 1e-2, "firm": 1e-2, "government": 1e-2},
                                    value_coef=0.0)["firm"]
    head = session.policies["firm"].network.head
    value_row = head.weight[-1].detach().clone()
    before = {k: v.clone() for k, v in session.policies["firm"].network.state_dict().items()}
    data = session.collect()
    metrics = learner.update(data, entropy_coef=0.01)
    after = session.policies["firm"].network.state_dict()
    assert torch.equal(head.weight[-1].detach(), value_row)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the policy did move
    assert metrics["loss/firm/critic"] != metrics["loss/firm/critic"]  # nan: no critic loss was computed
