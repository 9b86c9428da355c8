"""`python -m envs.demo`: one episode of the full economy under uniformly random actions, step by step.

A quick look at what the economy does before any learning: the aggregates an economist checks
first (prices and wages in effect, hours, production, sales, exports, consumption, taxes, rewards).
"""

from __future__ import annotations

import argparse

from .rbc import RBCConfig, RBCEnv


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--closed", action="store_true", help="closed economy (no export market)")
    args = parser.parse_args(argv)

    config = RBCConfig(open_economy=not args.closed)
    env = RBCEnv(config, num_envs=args.num_envs, seed=args.seed)
    rollout = env.rollout(config.episode_length, break_when_any_done=False)
    step = rollout["next"]
    header = (
        f"{'t':>2} {'price':>7} {'wage':>6} {'hours':>7} {'prod':>7} {'sales':>7} {'export':>7} "
        f"{'cons':>6} {'tax_in':>6} {'tax_co':>6} {'r_cons':>7} {'r_firm':>9} {'welfare':>9}"
    )
    print(f"{'open' if config.open_economy else 'closed'} economy, {args.num_envs} economies, random actions")
    print("per-economy means; hours and consumption per consumer, production/sales/exports per firm")
    print(header)
    for t in range(config.episode_length):
        def mean(group, key):
            return step[group, key][:, t].float().mean().item()

        consumption = step["consumer", "consumption"][:, t].sum(-1).mean().item()
        print(
            f"{t:>2} {mean('firm', 'price'):>7.0f} {mean('firm', 'wage'):>6.1f} {mean('consumer', 'hours'):>7.0f} "
            f"{mean('firm', 'production'):>7.1f} {mean('firm', 'sales'):>7.1f} {mean('firm', 'exports'):>7.1f} "
            f"{consumption:>6.2f} {mean('government', 'income_tax_rate'):>6.2f} "
            f"{mean('government', 'corporate_tax_rate'):>6.2f} {mean('consumer', 'reward'):>7.2f} "
            f"{mean('firm', 'reward'):>9.0f} {mean('government', 'reward'):>9.0f}"
        )


if __name__ == "__main__":
    main()
