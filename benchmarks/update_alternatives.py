"""What the consumer update would gain from the usual speed-ups, measured on this machine in one run.

The consumers' PPO update is about two thirds of a training iteration (`benchmarks/train_throughput.py`),
and most of its time is not matrix products but passes over the 16 x 10 x 100 x 12 x 11 logits (about
2.1 million per update at 16 economies) and over the firm-pair activations of the default network. This
script takes one rollout of the default profile's economy and networks (`workflow/config/default.yaml`:
the firm-equivariant consumer network, bf16 autocast where the CPU has it natively) and times one
forward and backward pass of the consumers' clipped PPO objective (the loss training uses, entropy and
value terms included) in five ways, interleaved round by round so that load hits all alike:

  eager              what training runs;
  compiled network   `torch.compile` (inductor) of the network, the distribution math eager;
  compiled heads     the network eager, the distribution math (normalize, log-probability, entropy) compiled;
  compiled both      both compiled;
  analytic heads     the distribution math as one autograd function with its gradient written out
                     (d log p / dx = onehot - p, dH / dx = -p (log p + H)), plain torch.

It prints each variant's median time, its ratio to eager (above 1: faster), its first-call (compile) time
and how far its loss and gradient move from eager's. A variant is worth adopting only where its ratio is
well above 1 on the machine classes the project runs on; docs/performance.md records what was found.

    python benchmarks/update_alternatives.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.learning.curriculum import Curriculum  # noqa: E402
from pipeline.learning.policies import cpu_has_fast_bf16  # noqa: E402
from pipeline.learning.session import Session  # noqa: E402
from pipeline.profiles import load_experiment  # noqa: E402

DEFAULT_PROFILE = ROOT / "workflow" / "config" / "default.yaml"


def heads(logits: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per consumer: log-probability of its action (summed over heads) and entropy, as MultiHeadCategorical."""
    logits = logits.float()
    log_p = logits - logits.logsumexp(dim=-1, keepdim=True)
    picked = log_p.gather(-1, action.unsqueeze(-1)).squeeze(-1).sum(-1)
    entropy = -(log_p.exp() * log_p).sum(-1).sum(-1)
    return picked, entropy


class AnalyticHeads(torch.autograd.Function):
    """`heads` with its gradient written out, so the backward pass is three passes over the logits."""

    @staticmethod
    def forward(ctx, logits, action):
        logits = logits.float()
        log_p = logits - logits.logsumexp(dim=-1, keepdim=True)
        p = log_p.exp()
        head_entropy = -(p * log_p).sum(-1)
        ctx.save_for_backward(p, log_p, head_entropy, action)
        return log_p.gather(-1, action.unsqueeze(-1)).squeeze(-1).sum(-1), head_entropy.sum(-1)

    @staticmethod
    def backward(ctx, grad_log_prob, grad_entropy):
        p, log_p, head_entropy, action = ctx.saved_tensors
        per_choice = (log_p + head_entropy.unsqueeze(-1)) * grad_entropy[..., None, None] + grad_log_prob[..., None, None]
        grad = -(p * per_choice)
        grad.scatter_add_(-1, action.unsqueeze(-1), grad_log_prob[..., None, None].expand(*action.shape, 1))
        return grad, None


def analytic_heads(logits, action):
    return AnalyticHeads.apply(logits, action)


class Objective:
    """The consumers' clipped PPO loss on one recorded rollout, with its pieces swappable."""

    def __init__(self, session: Session, batch, clip: float, entropy_coef: float, value_coef: float):
        self.network = session.policies["consumer"].network
        self.inputs = (batch["global_observation"], batch["consumer", "observation"], batch["consumer", "action_mask"])
        self.action = batch["consumer", "action"].long()
        self.old_log_prob = batch["consumer", "log_prob"].float()
        generator = torch.Generator().manual_seed(0)
        self.advantage = torch.randn(self.old_log_prob.shape, generator=generator)
        self.target = torch.randn(self.old_log_prob.shape, generator=generator)
        self.clip, self.entropy_coef, self.value_coef = clip, entropy_coef, value_coef

    def loss(self, network, head_fn) -> torch.Tensor:
        logits, value = network(*self.inputs)
        log_prob, entropy = head_fn(logits, self.action)
        ratio = (log_prob - self.old_log_prob).exp()
        clipped = ratio.clamp(1 - self.clip, 1 + self.clip)
        objective = -torch.min(ratio * self.advantage, clipped * self.advantage).mean()
        critic = torch.nn.functional.smooth_l1_loss(value.squeeze(-1).float(), self.target)
        return objective - self.entropy_coef * entropy.mean() + self.value_coef * critic

    def step(self, network, head_fn) -> tuple[float, torch.Tensor]:
        """One forward and backward pass; the loss and the flattened gradient."""
        self.network.zero_grad(set_to_none=True)
        loss = self.loss(network, head_fn)
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in self.network.parameters() if p.grad is not None])
        return float(loss.detach()), grad


def rollout() -> tuple[Session, object]:
    config = load_experiment(DEFAULT_PROFILE, ["tracking.enabled=false"], "open", 0, "train")
    session = Session(config)
    curriculum = Curriculum(config.curriculum, session.economy)
    plan = curriculum.plan(config.curriculum.stages[0].episodes)  # the firms stage: full consumer action set
    session.apply(plan)
    batch = session.collect()
    return session, batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each times every variant once)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the workflow's jobs use 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    session, batch = rollout()
    training = session.config.training
    objective = Objective(session, batch, training.clip_epsilon, 0.1, training.value_coef)
    network = objective.network
    variants = {
        "eager": lambda: (network, heads),
        "compiled network": lambda: (torch.compile(network), heads),
        "compiled heads": lambda: (network, torch.compile(heads)),
        "compiled both": lambda: (torch.compile(network), torch.compile(heads)),
        "analytic heads": lambda: (network, analytic_heads),
    }
    built, first_call, results = {}, {}, {}
    for name, make in variants.items():
        start = time.perf_counter()
        try:
            built[name] = make()
            results[name] = objective.step(*built[name])
        except Exception as err:  # a missing C++ compiler, say: report it and measure the rest
            print(f"{name}: not measured ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
            continue
        first_call[name] = time.perf_counter() - start
        objective.step(*built[name])  # a second warm-up call: the allocator's first reuse
    samples: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(args.rounds):
        for name, (net, head_fn) in built.items():
            start = time.perf_counter()
            objective.step(net, head_fn)
            samples[name].append(time.perf_counter() - start)
    eager = statistics.median(samples["eager"])
    loss0, grad0 = results["eager"]
    print(f"\nConsumer PPO objective, forward + backward, default profile's network (bf16 autocast: "
          f"{'yes' if cpu_has_fast_bf16() else 'no'}), {batch.shape[0]} economies x {batch.shape[1]} steps, "
          f"{args.threads} thread(s), median of {args.rounds} interleaved rounds")
    print(f"{'variant':>18} {'ms':>8} {'x eager':>8} {'first call s':>13} {'|dloss|':>9} {'grad rel diff':>14}")
    for name, values in samples.items():
        median = statistics.median(values)
        loss, grad = results[name]
        rel = float((grad - grad0).norm() / grad0.norm())
        print(f"{name:>18} {median * 1e3:>8.1f} {eager / median:>8.2f} {first_call[name]:>13.1f} "
              f"{abs(loss - loss0):>9.1e} {rel:>14.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
