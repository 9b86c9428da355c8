"""Accounting identities and spec-section-3 relations over many random steps.

Each check recomputes a spec relation from the readout (and the actions, decoded with the spec's
layout) of random rollouts of several economies, including partial episodes across a reset.

Float tolerance: the env computes in float32. Money identities are checked against
`MONEY_RTOL` times the total money stock in play plus a small absolute term, i.e. a few float32
roundings per agent; quantities (units of goods) against 1e-5 relative.
"""

from __future__ import annotations

import pytest
import torch

from envs.rbc.config import RBCConfig
from envs.rbc.env import RBCEnv

from conftest import crra, spec_decode

MONEY_RTOL = 1e-6  # ~8 float32 epsilons of the money stock
QTY_RTOL = 1e-5
T = 10
STEPS = 2 * T  # two episodes back to back, through the automatic reset


def random_masks(env: RBCEnv, generator: torch.Generator) -> None:
    config = env.config
    firm = torch.rand(config.n_firm_actions, generator=generator) < 0.4
    firm[torch.randint(config.n_firm_actions, (1,), generator=generator)] = True
    gov = torch.rand(config.n_government_actions, generator=generator) < 0.4
    gov[torch.randint(config.n_government_actions, (1,), generator=generator)] = True
    sizes = config.consumer_head_sizes
    consumer = torch.zeros(len(sizes), max(sizes), dtype=torch.bool)
    for head, size in enumerate(sizes):
        row = torch.rand(size, generator=generator) < 0.5
        row[torch.randint(size, (1,), generator=generator)] = True
        consumer[head, :size] = row
    env.set_action_mask("firm", firm)
    env.set_action_mask("government", gov)
    env.set_action_mask("consumer", consumer)


VARIANTS = {
    "open": dict(n_consumers=20, n_firms=4),
    "closed": dict(n_consumers=20, n_firms=4, open_economy=False),
    "open-masked": dict(n_consumers=20, n_firms=4, _masks=True),
    "closed-masked": dict(n_consumers=20, n_firms=4, open_economy=False, _masks=True),
    "budget-rule-guard-consumer-welfare": dict(
        n_consumers=12, n_firms=3, investment_rule="budget", consumer_budget_guard=0.01, welfare="consumer_only"
    ),
    "reference-100x10-digits": dict(observation_encoding="digits"),
    "poor-firms-strict-export": dict(n_consumers=20, n_firms=4, initial_firm_budget=500.0, export_price_inclusive=False),
}


@pytest.fixture(scope="module", params=list(VARIANTS), ids=list(VARIANTS))
def run(request):
    changes = dict(VARIANTS[request.param])
    masks = changes.pop("_masks", False)
    config = RBCConfig(**changes)
    env = RBCEnv(config, num_envs=8, seed=11)
    if masks:
        random_masks(env, torch.Generator().manual_seed(5))
    ro = env.rollout(STEPS, break_when_any_done=False)
    return config, env, ro


def f64(x):
    return x.to(torch.float64)


def decoded(config, ro):
    return spec_decode(config, ro["consumer", "action"], ro["firm", "action"], ro["government", "action"])


def money_tolerance(ro):
    stock = f64(ro["consumer", "budget"]).abs().sum(-1) + f64(ro["firm", "budget"]).abs().sum(-1)
    return MONEY_RTOL * stock + 1e-3


def test_money_changes_only_through_exports_investment_and_guard(run):
    config, _, ro = run
    nxt = ro["next"]
    before = f64(ro["consumer", "budget"]).sum(-1) + f64(ro["firm", "budget"]).sum(-1)
    after = f64(nxt["consumer", "budget"]).sum(-1) + f64(nxt["firm", "budget"]).sum(-1)
    export_revenue = (f64(nxt["firm", "price"]) * f64(nxt["firm", "exports"])).sum(-1)
    investment = f64(nxt["firm", "investment"]).sum(-1)
    expected = export_revenue - investment + config.consumer_budget_guard * config.n_consumers
    gap = (after - before - expected).abs()
    assert (gap <= money_tolerance(ro)).all(), gap.max()
    if not config.open_economy:
        assert (nxt["firm", "exports"] == 0).all()


def test_taxes_fully_redistributed(run):
    config, _, ro = run
    nxt = ro["next"]
    collected = f64(nxt["consumer", "income_tax"]).sum(-1) + f64(nxt["firm", "corporate_tax"]).sum(-1)
    transfers = f64(nxt["consumer", "transfer"])
    torch.testing.assert_close(transfers.sum(-1), collected, rtol=MONEY_RTOL, atol=1e-3)
    torch.testing.assert_close(f64(nxt["government", "revenue"]).squeeze(-1), collected, rtol=MONEY_RTOL, atol=1e-3)
    # equal lump sum for every consumer
    torch.testing.assert_close(transfers, transfers[..., :1].expand_as(transfers))
    assert (transfers >= 0).all()


def test_inventory_moves_by_production_sales_exports(run):
    _, _, ro = run
    nxt = ro["next"]
    change = f64(nxt["firm", "inventory"]) - f64(ro["firm", "inventory"])
    flows = f64(nxt["firm", "production"]) - f64(nxt["firm", "sales"]) - f64(nxt["firm", "exports"])
    scale = f64(ro["firm", "inventory"]).abs() + f64(nxt["firm", "production"]) + 1.0
    assert ((change - flows).abs() <= QTY_RTOL * scale).all()
    assert (nxt["firm", "inventory"] >= 0).all()


def test_rationing_never_sells_more_than_the_stock(run):
    _, _, ro = run
    nxt = ro["next"]
    stock = f64(ro["firm", "inventory"])
    sold = f64(nxt["firm", "sales"]) + f64(nxt["firm", "exports"])
    assert (sold <= stock * (1 + QTY_RTOL) + 1e-6).all()
    torch.testing.assert_close(f64(nxt["consumer", "consumption"]).sum(-2), f64(nxt["firm", "sales"]), rtol=QTY_RTOL, atol=1e-6)
    assert (nxt["consumer", "consumption"] >= 0).all()


def test_budgets_bound_spending_and_stay_nonnegative(run):
    config, _, ro = run
    nxt = ro["next"]
    spending = (f64(nxt["consumer", "consumption"]) * f64(nxt["firm", "price"]).unsqueeze(-2)).sum(-1)
    start = f64(ro["consumer", "budget"])
    assert (spending <= start * (1 + 1e-6) + 1e-3).all()
    assert (ro["consumer", "budget"] >= 0).all() and (nxt["consumer", "budget"] >= 0).all()
    # the consumer's budget identity (spec 3 steps 6, 11, 12)
    expected = (
        start
        - spending
        + f64(nxt["consumer", "labor_income"])
        - f64(nxt["consumer", "income_tax"])
        + f64(nxt["consumer", "transfer"])
        + config.consumer_budget_guard
    ).clamp_min(0)
    torch.testing.assert_close(f64(nxt["consumer", "budget"]), expected, rtol=1e-6, atol=2e-3)


def test_demand_scaling_rationing_and_overdemand_flag(run):
    """Steps 2-5 recomputed from the actions: budget-scaled demand, proportional rationing, the flag."""
    config, env, ro = run
    goods, hours, employer, *_ = decoded(config, ro)
    nxt = ro["next"]
    price = f64(nxt["firm", "price"])
    budget = f64(ro["consumer", "budget"])
    cost = (goods * price.unsqueeze(-2)).sum(-1)
    scale = torch.where((cost > 0) & (cost > budget), budget / cost.clamp_min(1e-300), torch.ones_like(cost))
    demand = goods * scale.unsqueeze(-1)
    aggregate = demand.sum(-2)
    stock = f64(ro["firm", "inventory"])
    over = (aggregate > 0) & (aggregate > stock)
    fill = torch.where(over, stock / aggregate.clamp_min(1e-300), torch.ones_like(stock))
    torch.testing.assert_close(f64(nxt["consumer", "consumption"]), demand * fill.unsqueeze(-2), rtol=1e-5, atol=1e-5)
    # the flag is in the next observation's flag block (spec 4.1 order), decisive cases only
    F, width = config.n_firms, env.encoder.width
    flag = nxt["global_observation"][..., 2 * F + F * width : 3 * F + F * width]
    decisive = (aggregate - stock).abs() > 1e-4 * (1 + stock)
    assert torch.equal(flag.bool()[decisive], over[decisive])
    assert decisive.float().mean() > 0.9
    # flagged goods sell out; unflagged goods serve all scaled demand
    assert torch.allclose(f64(nxt["firm", "sales"])[over], stock[over], rtol=1e-5, atol=1e-6)
    # readout of the consumers' actions
    torch.testing.assert_close(f64(nxt["consumer", "hours"]), hours)
    assert torch.equal(nxt["consumer", "employer"], employer)


def test_production_function(run):
    config, _, ro = run
    _, hours, employer, *_ = decoded(config, ro)
    nxt = ro["next"]
    labor = torch.zeros_like(f64(nxt["firm", "production"])).scatter_add_(-1, employer, hours)
    labor = torch.where(labor >= config.labor_floor, labor, torch.zeros_like(labor))
    alpha = torch.tensor(config.alpha, dtype=torch.float64)
    capital = f64(ro["firm", "capital"])  # start-of-step capital
    expected = config.productivity * capital ** (1 - alpha) * labor**alpha
    torch.testing.assert_close(f64(nxt["firm", "production"]), expected, rtol=1e-5, atol=1e-6)
    assert (labor > 0).any() and (labor == 0).any() or config.n_consumers > 50
    # capital grows by investment, never depreciates
    torch.testing.assert_close(f64(nxt["firm", "capital"]), capital + f64(nxt["firm", "investment"]), rtol=1e-6, atol=1e-3)


def test_export_rule(run):
    config, _, ro = run
    nxt = ro["next"]
    price, exports = f64(nxt["firm", "price"]), f64(nxt["firm", "exports"])
    left = (f64(ro["firm", "inventory"]) - f64(nxt["firm", "sales"])).clamp_min(0)
    if config.export_price_inclusive:
        accepted = price >= config.export_min_price
    else:
        accepted = price > config.export_min_price
    expected = torch.where(accepted, left.clamp_max(config.export_quantity_cap), torch.zeros_like(left))
    if not config.open_economy:
        expected = torch.zeros_like(left)
    torch.testing.assert_close(exports, expected, rtol=1e-5, atol=1e-5)
    assert (exports <= config.export_quantity_cap).all()
    assert (exports[~accepted] == 0).all()


def test_firm_and_consumer_accounts(run):
    config, _, ro = run
    nxt = ro["next"]
    _, hours, employer, *_ = decoded(config, ro)
    price, wage = f64(nxt["firm", "price"]), f64(nxt["firm", "wage"])
    tau = f64(nxt["government", "income_tax_rate"])
    sigma = f64(nxt["government", "corporate_tax_rate"])
    labor_income = torch.gather(wage, -1, employer) * hours
    torch.testing.assert_close(f64(nxt["consumer", "labor_income"]), labor_income, rtol=1e-6, atol=1e-3)
    torch.testing.assert_close(f64(nxt["consumer", "income_tax"]), tau * labor_income, rtol=1e-6, atol=1e-3)
    revenue = price * (f64(nxt["firm", "sales"]) + f64(nxt["firm", "exports"]))
    hours_by_firm = torch.zeros_like(price).scatter_add_(-1, employer, hours)
    wage_bill = wage * hours_by_firm
    base = f64(ro["firm", "budget"]) if config.investment_rule == "budget" else revenue - wage_bill
    investment = (config.investment_fraction * base).clamp_min(0)
    profit = revenue - wage_bill - investment
    tax = sigma * profit.clamp_min(0)
    for key, value in (("revenue", revenue), ("wage_bill", wage_bill), ("investment", investment),
                       ("profit", profit), ("corporate_tax", tax)):
        torch.testing.assert_close(f64(nxt["firm", key]), value, rtol=1e-5, atol=1e-2, msg=key)
    torch.testing.assert_close(
        f64(nxt["firm", "budget"]), f64(ro["firm", "budget"]) + profit - tax, rtol=1e-6, atol=1e-1
    )


def test_rewards_and_welfare(run):
    config, _, ro = run
    nxt = ro["next"]
    j = torch.arange(config.n_consumers, dtype=torch.float64)
    theta = config.labor_disutility * (1 - j / config.n_consumers) ** (1 / config.pareto_shape)
    utility = crra(f64(nxt["consumer", "consumption"]), config.crra_eta).sum(-1)
    consumer_reward = utility - 0.5 * theta * f64(nxt["consumer", "hours"])
    torch.testing.assert_close(f64(nxt["consumer", "reward"]).squeeze(-1), consumer_reward, rtol=1e-5, atol=1e-4)
    firm_reward = f64(nxt["firm", "profit"]) - f64(nxt["firm", "corporate_tax"])  # no penalty configured
    torch.testing.assert_close(f64(nxt["firm", "reward"]).squeeze(-1), firm_reward, rtol=1e-6, atol=1e-2)
    weight = 0.0025 if config.welfare == "total" else 0.0
    welfare = f64(nxt["consumer", "reward"]).sum((-1, -2)) + weight * f64(nxt["firm", "reward"]).sum((-1, -2))
    torch.testing.assert_close(f64(nxt["government", "welfare"]).squeeze(-1), welfare, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(nxt["government", "reward"].reshape(welfare.shape), nxt["government", "welfare"].squeeze(-1))


def test_choices_take_effect_next_step(run):
    config, _, ro = run
    _, _, _, price, wage, income, corporate = decoded(config, ro)
    nxt = ro["next"]
    within = [k for k in range(STEPS - 1) if (k + 1) % T != 0]  # step k+1 in the same episode as k
    nk = torch.tensor(within) + 1
    k = torch.tensor(within)
    torch.testing.assert_close(f64(nxt["firm", "price"][:, nk]), price[:, k])
    torch.testing.assert_close(f64(nxt["firm", "wage"][:, nk]), wage[:, k])
    torch.testing.assert_close(f64(nxt["government", "income_tax_rate"][:, nk]).squeeze(-1), income[:, k])
    torch.testing.assert_close(f64(nxt["government", "corporate_tax_rate"][:, nk]).squeeze(-1), corporate[:, k])
    # the first step of each episode trades at the initial values, whatever was chosen before the reset
    for start in (0, T):
        assert (nxt["firm", "price"][:, start] == config.initial_price).all()
        assert (nxt["firm", "wage"][:, start] == config.initial_wage).all()
        assert (nxt["government", "income_tax_rate"][:, start] == config.initial_income_tax).all()


def test_random_actions_respect_masks(run):
    config, env, ro = run
    firm_mask = env.action_mask("firm")
    assert firm_mask[ro["firm", "action"]].all()
    assert env.action_mask("government")[ro["government", "action"]].all()
    heads = torch.arange(config.n_consumer_heads)
    assert env.action_mask("consumer")[heads, ro["consumer", "action"]].all()
    # the mask in force is also what the agents observe
    assert torch.equal(ro["firm", "action_mask"][0, 0, 0], firm_mask)


# ---------------------------------------------------------------------------------- curriculum controls


def test_no_ponzi_penalty_only_on_last_step_and_negative_budgets():
    config = RBCConfig(n_consumers=20, n_firms=4, initial_firm_budget=300.0)
    env = RBCEnv(config, num_envs=16, seed=3)
    env.set_no_ponzi_multipliers(consumer=2.0, firm=0.5)
    ro = env.rollout(STEPS, break_when_any_done=False)
    nxt = ro["next"]
    plain = f64(nxt["firm", "profit"]) - f64(nxt["firm", "corporate_tax"])
    last = nxt["done"].expand_as(plain)
    debt = (-f64(nxt["firm", "budget"])).clamp_min(0)
    expected = plain - last.to(torch.float64) * 0.5 * debt / 100.0
    torch.testing.assert_close(f64(nxt["firm", "reward"]).squeeze(-1), expected, rtol=1e-6, atol=1e-2)
    assert (last & (debt > 0)).any(), "the case must actually occur"
    assert (~last & (debt > 0)).any(), "negative budgets before the last step must occur too (and cost nothing)"
    # consumer budgets never go negative, so the consumer multiplier never bites
    j = torch.arange(20, dtype=torch.float64)
    theta = 0.01 * (1 - j / 20) ** 0.25
    expected_c = crra(f64(nxt["consumer", "consumption"])).sum(-1) - 0.5 * theta * f64(nxt["consumer", "hours"])
    torch.testing.assert_close(f64(nxt["consumer", "reward"]).squeeze(-1), expected_c, rtol=1e-5, atol=1e-4)


def test_anneal_factor_applies_from_next_reset():
    config = RBCConfig(n_consumers=10, n_firms=2)
    env = RBCEnv(config, num_envs=4, seed=0)
    j = torch.arange(10, dtype=torch.float64)
    base = 0.01 * (1 - j / 10) ** 0.25
    td = env.reset()
    torch.testing.assert_close(f64(td["consumer", "observation"][..., -1]) * 0.01, base.expand(4, -1), rtol=1e-6, atol=0)
    td = env.step_mdp(env.rand_step(td))
    env.set_labor_disutility_anneal(0.25)
    step = env.rand_step(td)
    # mid-episode: the old theta still prices labor
    expected = crra(f64(step["next", "consumer", "consumption"])).sum(-1) - 0.5 * base * f64(step["next", "consumer", "hours"])
    torch.testing.assert_close(f64(step["next", "consumer", "reward"]).squeeze(-1), expected, rtol=1e-5, atol=1e-5)
    td = env.reset()
    torch.testing.assert_close(f64(td["consumer", "observation"][..., -1]) * 0.01, 0.25 * base.expand(4, -1), rtol=1e-6, atol=1e-9)
    step = env.rand_step(td)
    expected = crra(f64(step["next", "consumer", "consumption"])).sum(-1) - 0.5 * 0.25 * base * f64(step["next", "consumer", "hours"])
    torch.testing.assert_close(f64(step["next", "consumer", "reward"]).squeeze(-1), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        env.set_labor_disutility_anneal(1.5)
