"""The masked categorical distributions (spec 2.1, 2.4) against independent per-head references."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ProbabilisticActor, ValueOperator
from torchrl.objectives import ClipPPOLoss

from pipeline.learning.distributions import JointCategorical, MultiHeadCategorical

# Heads of different widths padded to the widest, like the consumers' 11/5/N_f heads.
HEAD_SIZES = [11, 11, 11, 5, 3]
WIDTH = max(HEAD_SIZES)


def padding_mask(batch: tuple[int, ...]) -> torch.Tensor:
    sizes = torch.tensor(HEAD_SIZES)
    mask = torch.arange(WIDTH) < sizes.unsqueeze(-1)
    return mask.expand(*batch, *mask.shape).clone()


def per_head_reference(logits: torch.Tensor, mask: torch.Tensor):
    """Per-head torch Categorical over the allowed entries only (the padding never enters)."""
    heads = []
    for h in range(logits.shape[-2]):
        allowed = mask[..., h, :]
        # every batch row has the same allowed set per head in these tests
        index = allowed.reshape(-1, allowed.shape[-1])[0].nonzero().flatten()
        heads.append((index, torch.distributions.Categorical(logits=logits[..., h, index])))
    return heads


def test_multi_head_log_prob_is_the_sum_of_per_head_log_softmax():
    torch.manual_seed(0)
    logits = torch.randn(4, 3, len(HEAD_SIZES), WIDTH) * 3
    mask = padding_mask((4, 3))
    mask[..., 0, 7] = False  # also forbid one real choice
    dist = MultiHeadCategorical(logits, mask)
    action = torch.stack([torch.randint(0, s, (4, 3)) for s in HEAD_SIZES], -1)
    action[..., 0] = torch.where(action[..., 0] == 7, 6, action[..., 0])
    expected = torch.zeros(4, 3)
    for h, (index, ref) in enumerate(per_head_reference(logits, mask)):
        position = (action[..., h].unsqueeze(-1) == index).float().argmax(-1)
        expected += ref.log_prob(position)
    assert dist.batch_shape == (4, 3) and dist.event_shape == (len(HEAD_SIZES),)
    torch.testing.assert_close(dist.log_prob(action), expected, rtol=1e-5, atol=1e-5)


def test_multi_head_entropy_is_the_sum_of_per_head_entropies():
    torch.manual_seed(1)
    logits = torch.randn(6, 2, len(HEAD_SIZES), WIDTH) * 2
    mask = padding_mask((6, 2))
    dist = MultiHeadCategorical(logits, mask)
    expected = sum(ref.entropy() for _, ref in per_head_reference(logits, mask))
    torch.testing.assert_close(dist.entropy(), expected, rtol=1e-5, atol=1e-5)
    # uniform logits: the entropy is the sum of log(head size)
    uniform = MultiHeadCategorical(torch.zeros(1, len(HEAD_SIZES), WIDTH), padding_mask((1,)))
    torch.testing.assert_close(uniform.entropy(), torch.tensor([sum(torch.tensor(HEAD_SIZES).float().log())]))


def test_single_categorical_matches_torch_categorical_on_allowed_actions():
    torch.manual_seed(2)
    logits = torch.randn(5, 30)
    mask = torch.zeros(30, dtype=torch.bool)
    mask[[3, 4, 12, 29]] = True
    dist = JointCategorical(logits, mask.expand(5, 30))
    allowed = mask.nonzero().flatten()
    ref = torch.distributions.Categorical(logits=logits[:, allowed])
    for j, a in enumerate(allowed.tolist()):
        torch.testing.assert_close(dist.log_prob(torch.full((5,), a)), ref.log_prob(torch.full((5,), j)))
    torch.testing.assert_close(dist.entropy(), ref.entropy())


def test_joint_categorical_agrees_with_torchrls_masked_categorical_on_allowed_actions():
    """The same law as torchrl.modules.MaskedCategorical; only a masked action's score differs (finite here)."""
    from torchrl.modules import MaskedCategorical as TorchRLMasked

    torch.manual_seed(6)
    logits = torch.randn(4, 3, 30) * 3
    mask = torch.rand(4, 3, 30) > 0.4
    mask[..., 0] = True
    ours, theirs = JointCategorical(logits, mask), TorchRLMasked(logits=logits, mask=mask)
    torch.testing.assert_close(ours.entropy(), theirs.entropy(), rtol=1e-5, atol=1e-5)
    for action in range(30):
        value = torch.full((4, 3), action)
        allowed = mask[..., action]
        torch.testing.assert_close(ours.log_prob(value)[allowed], theirs.log_prob(value)[allowed], rtol=1e-5, atol=1e-5)
        assert bool((ours.log_prob(value)[~allowed] < -1e8).all())
        assert bool(torch.isneginf(theirs.log_prob(value)[~allowed]).all())


def test_masked_choices_have_zero_probability_and_are_never_sampled():
    torch.manual_seed(3)
    # logits strongly favour the masked entries: masking must still exclude them completely
    logits = torch.zeros(8, 30)
    logits[:, :20] = 50.0
    mask = torch.zeros(8, 30, dtype=torch.bool)
    mask[:, 20:] = True
    dist = JointCategorical(logits, mask)
    assert torch.all(dist.probs[~mask] == 0)
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(8))
    draws = dist.sample((5000,))
    assert draws.shape == (5000, 8)
    assert bool((draws >= 20).all())
    assert dist.log_prob(torch.full((8,), 3)).max() < -1e6
    assert torch.isfinite(dist.entropy()).all()

    heads = MultiHeadCategorical(torch.randn(4, len(HEAD_SIZES), WIDTH) * 5 + 10, padding_mask((4,)))
    draws = heads.sample((5000,))
    for h, size in enumerate(HEAD_SIZES):
        assert int(draws[..., h].max()) < size
        assert torch.all(heads.probs[..., h, size:] == 0)


def test_sampling_frequencies_match_the_probabilities():
    """Gumbel-max draws follow the categorical law (100k draws: 3-sigma <= 0.005 per entry)."""
    torch.manual_seed(4)
    logits = torch.tensor([[0.0, 1.0, -1.0, 2.0, -5.0]])
    mask = torch.tensor([[True, True, True, True, False]])
    dist = JointCategorical(logits, mask)
    draws = dist.sample((100_000,)).flatten()
    frequency = torch.bincount(draws, minlength=5).float() / draws.numel()
    expected = torch.softmax(logits[0, :4], -1)
    torch.testing.assert_close(frequency[:4], expected, atol=5e-3, rtol=0)
    assert frequency[4] == 0


def test_deterministic_sample_is_the_argmax_of_the_allowed_logits():
    torch.manual_seed(5)
    logits = torch.randn(7, len(HEAD_SIZES), WIDTH)
    logits[..., 0, 10] = 100.0  # allowed and largest
    logits[..., 3, 8] = 100.0  # largest but padding of a 5-wide head
    dist = MultiHeadCategorical(logits, padding_mask((7,)))
    mode = dist.deterministic_sample
    assert bool((mode[..., 0] == 10).all())
    expected_head3 = logits[..., 3, :5].argmax(-1)
    assert torch.equal(mode[..., 3], expected_head3)

    # through a ProbabilisticActor under deterministic exploration
    module = TensorDictModule(lambda x: x, in_keys=["logits_in"], out_keys=["logits"])
    actor = ProbabilisticActor(module, in_keys=["logits"], distribution_class=JointCategorical,
                               return_log_prob=True)
    td = TensorDict({"logits_in": torch.randn(9, 30)}, batch_size=[9])
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        out = actor(td)
    assert torch.equal(out["action"], td["logits_in"].argmax(-1))


class _HeadNet(nn.Module):
    """Linear logits for padded heads with the padding masked, plus a value."""

    def __init__(self, obs_dim: int):
        super().__init__()
        self.logits = nn.Linear(obs_dim, len(HEAD_SIZES) * WIDTH)

    def forward(self, obs, mask):
        logits = self.logits(obs).reshape(*obs.shape[:-1], len(HEAD_SIZES), WIDTH)
        return logits.masked_fill(~mask, -1e9)


def test_multi_head_distribution_trains_with_clip_ppo_loss():
    torch.manual_seed(6)
    batch, obs_dim = (16, 3), 4
    net = _HeadNet(obs_dim)
    actor = ProbabilisticActor(
        TensorDictModule(net, in_keys=["obs", "mask"], out_keys=["logits"]),
        in_keys=["logits"],
        out_keys=["action"],
        distribution_class=MultiHeadCategorical,
        return_log_prob=True,
        log_prob_key="action_log_prob",
    )
    critic = ValueOperator(nn.Linear(obs_dim, 1), in_keys=["obs"])
    td = TensorDict({"obs": torch.randn(*batch, obs_dim), "mask": padding_mask(batch)}, batch_size=batch)
    with torch.no_grad():
        actor(td)
    assert td["action_log_prob"].shape == batch  # one joint log-prob per agent
    td["advantage"] = torch.randn(*batch, 1)
    td["value_target"] = torch.randn(*batch, 1)
    td["state_value"] = torch.zeros(*batch, 1)
    loss = ClipPPOLoss(actor, critic, clip_epsilon=0.1, entropy_coeff=0.01, normalize_advantage=True)
    loss.set_keys(sample_log_prob="action_log_prob")
    out = loss(td)
    total = out["loss_objective"] + out["loss_entropy"] + out["loss_critic"]
    assert torch.isfinite(total)
    total.backward()
    weight_grad = net.logits.weight.grad.reshape(len(HEAD_SIZES), WIDTH, obs_dim)
    assert torch.isfinite(weight_grad).all()
    allowed = padding_mask(())
    assert weight_grad[allowed].abs().sum() > 0  # the real choices learn
    assert torch.all(weight_grad[~allowed] == 0)  # padding logits never receive a gradient
    assert critic.module.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [JointCategorical, MultiHeadCategorical])
def test_logits_are_normalized_in_float32_even_from_bf16(cls):
    logits = torch.randn(3, len(HEAD_SIZES), WIDTH).to(torch.bfloat16)
    mask = padding_mask((3,))
    dist = cls(logits, mask) if cls is MultiHeadCategorical else cls(logits[:, 0], mask[:, 0])
    assert dist.logits.dtype == torch.float32
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(dist.probs.shape[:-1]))
