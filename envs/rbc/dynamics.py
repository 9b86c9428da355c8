"""The economy's step as pure tensor functions, in the order of specification section 3.

Everything here is batched over economies (leading dim E) and vectorized over agents: no Python
loop runs over economies, consumers or firms. The functions take and return plain named tuples of
tensors so that a second backend (the CUDA kernels in `gpu/`) can replace `step_economy` one for
one and be compared with it number by number.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import torch
from torch import Tensor

from .config import RBCConfig


@dataclass(frozen=True)
class EconomyParameters:
    """The config's numbers as tensors on one device, built once per environment."""

    n_consumers: int
    n_firms: int
    episode_length: int
    consumption_grid: Tensor  # (n_levels,)
    hours_grid: Tensor  # (n_hours,)
    price_grid: Tensor  # (n_prices,)
    wage_grid: Tensor  # (n_wages,)
    income_tax_grid: Tensor  # (n_income,)
    corporate_tax_grid: Tensor  # (n_corporate,)
    alpha: Tensor  # (F,) labor exponent
    initial_capital: Tensor  # (F,)
    base_theta: Tensor  # (C,) labor disutility before the curriculum's anneal factor
    productivity: float
    crra_eta: float
    labor_disutility_scale: float
    investment_fraction: float
    invest_from_budget: bool
    interest_rate: float
    labor_floor: float
    open_economy: bool
    export_min_price: float
    export_quantity_cap: float
    export_price_inclusive: bool
    consumer_budget_guard: float
    welfare_firm_weight: float
    consumer_penalty_scale: float
    firm_penalty_scale: float
    initial_price: float
    initial_wage: float
    initial_inventory: float
    initial_income_tax: float
    initial_corporate_tax: float
    initial_consumer_budget: float
    initial_firm_budget: float

    def to(self, device: torch.device | str) -> "EconomyParameters":
        """The same parameters with every tensor on `device` (RBCEnv.to)."""
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self) if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **moved)

    @classmethod
    def from_config(cls, config: RBCConfig, device: torch.device | str = "cpu") -> "EconomyParameters":
        def vec(values) -> Tensor:
            return torch.tensor(values, dtype=torch.float32, device=device)

        return cls(
            n_consumers=config.n_consumers,
            n_firms=config.n_firms,
            episode_length=config.episode_length,
            consumption_grid=vec(config.consumption_grid),
            hours_grid=vec(config.hours_grid),
            price_grid=vec(config.price_grid),
            wage_grid=vec(config.wage_grid),
            income_tax_grid=vec(config.income_tax_grid),
            corporate_tax_grid=vec(config.corporate_tax_grid),
            alpha=vec(config.alpha),
            initial_capital=vec(config.initial_capital),
            base_theta=pareto_labor_disutility(config, device),
            productivity=config.productivity,
            crra_eta=config.crra_eta,
            labor_disutility_scale=config.labor_disutility_scale,
            investment_fraction=config.investment_fraction,
            invest_from_budget=config.investment_rule == "budget",
            interest_rate=config.interest_rate,
            labor_floor=config.labor_floor,
            open_economy=config.open_economy,
            export_min_price=config.export_min_price,
            export_quantity_cap=config.export_quantity_cap,
            export_price_inclusive=config.export_price_inclusive,
            consumer_budget_guard=config.consumer_budget_guard,
            welfare_firm_weight=config.welfare_firm_weight,
            consumer_penalty_scale=config.consumer_penalty_scale,
            firm_penalty_scale=config.firm_penalty_scale,
            initial_price=config.initial_price,
            initial_wage=config.initial_wage,
            initial_inventory=config.initial_inventory,
            initial_income_tax=config.initial_income_tax,
            initial_corporate_tax=config.initial_corporate_tax,
            initial_consumer_budget=config.initial_consumer_budget,
            initial_firm_budget=config.initial_firm_budget,
        )


def pareto_labor_disutility(config: RBCConfig, device: torch.device | str = "cpu") -> Tensor:
    """theta_j = theta_bar / F^-1_Pareto(j / N_c): consumer 0 dislikes work the most (spec 1.3)."""
    quantile = torch.arange(config.n_consumers, dtype=torch.float64) / config.n_consumers
    pareto_inverse_cdf = (1.0 - quantile) ** (-1.0 / config.pareto_shape)
    return (config.labor_disutility / pareto_inverse_cdf).to(device=device, dtype=torch.float32)


class EconomyState(NamedTuple):
    """The state at the start of a step; prices, wages and taxes are the ones in effect now."""

    price: Tensor  # (E, F)
    wage: Tensor  # (E, F)
    inventory: Tensor  # (E, F) units available for sale this step
    overdemanded: Tensor  # (E, F) 1.0 where last step's demand exceeded the stock
    income_tax: Tensor  # (E,)
    corporate_tax: Tensor  # (E,)
    time: Tensor  # (E,) steps taken in this episode, as float
    consumer_budget: Tensor  # (E, C)
    firm_budget: Tensor  # (E, F)
    capital: Tensor  # (E, F)
    theta: Tensor  # (E, C) labor disutility including the anneal factor of this episode


class Decisions(NamedTuple):
    """All agents' actions of one step, decoded from grid indices into economic quantities."""

    attempted_consumption: Tensor  # (E, C, F) units of each good the consumer tries to buy
    hours: Tensor  # (E, C)
    employer: Tensor  # (E, C) int64 firm index
    chosen_price: Tensor  # (E, F) takes effect next step
    chosen_wage: Tensor  # (E, F) takes effect next step
    chosen_income_tax: Tensor  # (E,) takes effect next step
    chosen_corporate_tax: Tensor  # (E,) takes effect next step


class Penalties(NamedTuple):
    """No-Ponzi multipliers (spec 5.4), set by the curriculum between episodes."""

    consumer: float = 0.0
    firm: float = 0.0


class StepOutcome(NamedTuple):
    """What happened during one step: the economic readout plus the rewards."""

    # consumers
    consumption: Tensor  # (E, C, F) realized units
    labor_income: Tensor  # (E, C) pre-tax wage income
    income_tax_paid: Tensor  # (E, C)
    transfer: Tensor  # (E, C) lump-sum redistribution received
    consumer_reward: Tensor  # (E, C)
    # firms
    production: Tensor  # (E, F)
    sales: Tensor  # (E, F) units sold to consumers
    exports: Tensor  # (E, F)
    revenue: Tensor  # (E, F)
    wage_bill: Tensor  # (E, F)
    investment: Tensor  # (E, F)
    profit: Tensor  # (E, F) after investment, before corporate tax
    corporate_tax_paid: Tensor  # (E, F)
    firm_reward: Tensor  # (E, F)
    # government
    tax_revenue: Tensor  # (E,)
    welfare: Tensor  # (E,) this step's social welfare in the configured variant


def initial_state(params: EconomyParameters, n_envs: int, anneal: float, device: torch.device) -> EconomyState:
    """The deterministic state every episode starts from (spec 1.3)."""
    E, C, F = n_envs, params.n_consumers, params.n_firms

    def full(shape, value) -> Tensor:
        return torch.full(shape, float(value), dtype=torch.float32, device=device)

    return EconomyState(
        price=full((E, F), params.initial_price),
        wage=full((E, F), params.initial_wage),
        inventory=full((E, F), params.initial_inventory),
        overdemanded=full((E, F), 0.0),
        income_tax=full((E,), params.initial_income_tax),
        corporate_tax=full((E,), params.initial_corporate_tax),
        time=full((E,), 0.0),
        consumer_budget=full((E, C), params.initial_consumer_budget),
        firm_budget=full((E, F), params.initial_firm_budget),
        capital=params.initial_capital.expand(E, F).clone(),
        theta=(params.base_theta * anneal).expand(E, C).clone(),
    )


def decode_actions(
    params: EconomyParameters, consumer_action: Tensor, firm_action: Tensor, government_action: Tensor
) -> Decisions:
    """Grid indices to quantities: consumer heads (goods..., hours, employer); firm 5*price+wage; tax 6*income+corporate."""
    F = params.n_firms
    n_wages = params.wage_grid.numel()
    n_corporate = params.corporate_tax_grid.numel()
    government_action = government_action.reshape(-1)
    return Decisions(
        attempted_consumption=_grid_values(params.consumption_grid, consumer_action[..., :F]),
        hours=_grid_values(params.hours_grid, consumer_action[..., F]),
        employer=consumer_action[..., F + 1],
        chosen_price=_grid_values(params.price_grid, firm_action // n_wages),
        chosen_wage=_grid_values(params.wage_grid, firm_action % n_wages),
        chosen_income_tax=_grid_values(params.income_tax_grid, government_action // n_corporate),
        chosen_corporate_tax=_grid_values(params.corporate_tax_grid, government_action % n_corporate),
    )


def _grid_values(grid: Tensor, index: Tensor) -> Tensor:
    """grid[index] for a 1-d grid; a flat index_select is several times faster than advanced indexing on CPU."""
    return grid.index_select(0, index.reshape(-1)).view(index.shape)


def crra_utility(consumption: Tensor, eta: float) -> Tensor:
    """Shifted CRRA u(c) = ((c + 1)^(1 - eta) - 1) / (1 - eta), so u(0) = 0 (spec 5.1)."""
    return (consumption + 1.0).pow_(1.0 - eta).sub_(1.0).div_(1.0 - eta)  # in place: one temporary, not three


def step_economy(
    params: EconomyParameters, state: EconomyState, decisions: Decisions, penalties: Penalties
) -> tuple[EconomyState, StepOutcome]:
    """One simultaneous move of all agents; every transaction uses the start-of-step state."""
    p, w, y = state.price, state.wage, state.inventory
    tau, sigma = state.income_tax, state.corporate_tax
    budget = state.consumer_budget
    n_consumers = params.n_consumers

    # Step 2. Budget-scale each consumer's demand (no borrowing; start-of-step budget).
    attempted_cost = torch.einsum("ecf,ef->ec", decisions.attempted_consumption, p)
    over_budget = attempted_cost > budget
    budget_scale = torch.where(over_budget, budget / attempted_cost.clamp_min(1e-30), torch.ones_like(budget))
    demand = decisions.attempted_consumption * budget_scale.unsqueeze(-1)

    # Step 3. Aggregate demand per good and hours per employer.
    aggregate_demand = demand.sum(dim=1)
    hours_by_firm = torch.zeros_like(p).scatter_add_(1, decisions.employer, decisions.hours)

    # Step 4. Rationing flag: demand exceeds the existing stock.
    overdemanded = (aggregate_demand > 0) & (aggregate_demand > y)

    # Step 5. Proportional rationing of the existing stock.
    fill_rate = torch.where(overdemanded, y / aggregate_demand.clamp_min(1e-30), torch.ones_like(y))
    consumption = demand * fill_rate.unsqueeze(1)
    sales = consumption.sum(dim=1)

    # Step 6. Consumer income and spending.
    spending = torch.einsum("ecf,ef->ec", consumption, p)
    wage_of_employer = torch.gather(w, 1, decisions.employer)
    labor_income = wage_of_employer * decisions.hours
    income_tax_paid = tau.unsqueeze(1) * labor_income
    consumer_budget_change = params.consumer_budget_guard - spending + labor_income - income_tax_paid

    # Step 7. Export market (open economy only), after domestic consumption, at the firm's own price.
    unsold = (y - sales).clamp_min(0.0)
    if params.open_economy:
        price_accepted = p >= params.export_min_price if params.export_price_inclusive else p > params.export_min_price
        exports = torch.where(price_accepted, unsold.clamp_max(params.export_quantity_cap), torch.zeros_like(y))
    else:
        exports = torch.zeros_like(y)

    # Step 8. Firm accounts.
    revenue = p * (sales + exports)
    wage_bill = w * hours_by_firm
    operating_income = revenue - wage_bill
    investment_base = state.firm_budget if params.invest_from_budget else operating_income
    investment = (params.investment_fraction * investment_base).clamp_min(0.0)
    profit = operating_income - investment
    corporate_tax_paid = sigma.unsqueeze(1) * profit.clamp_min(0.0)
    firm_budget_change = profit - corporate_tax_paid

    # Step 9. Production from this step's labor and start-of-step capital; sellable next step.
    effective_labor = torch.where(hours_by_firm >= params.labor_floor, hours_by_firm, torch.zeros_like(y))
    production = params.productivity * state.capital.pow(1.0 - params.alpha) * effective_labor.pow(params.alpha)
    next_inventory = (y - sales - exports).clamp_min(0.0) + production

    # Step 10. Next global state: the choices of this step take effect from the next one.
    next_price = decisions.chosen_price
    next_wage = decisions.chosen_wage
    next_overdemanded = overdemanded.to(p.dtype)
    next_time = state.time + 1.0
    next_income_tax = decisions.chosen_income_tax
    next_corporate_tax = decisions.chosen_corporate_tax

    # Step 11. Redistribution: all tax revenue, equally to every consumer, in the same step.
    tax_revenue = income_tax_paid.sum(dim=1) + corporate_tax_paid.sum(dim=1)
    transfer_per_consumer = tax_revenue / n_consumers
    transfer = transfer_per_consumer.unsqueeze(1).expand_as(labor_income)

    # Step 12. Budgets, interest on positive balances, capital accumulation (no depreciation).
    next_consumer_budget = (budget + consumer_budget_change + transfer).clamp_min(0.0)
    next_firm_budget = state.firm_budget + firm_budget_change
    next_consumer_budget = _credit_interest(next_consumer_budget, params.interest_rate)
    next_firm_budget = _credit_interest(next_firm_budget, params.interest_rate)
    next_capital = state.capital + investment

    # Step 13. Rewards, with the no-Ponzi penalty on the episode's last step.
    is_last_step = (next_time >= params.episode_length).to(p.dtype).unsqueeze(1)
    utility = crra_utility(consumption, params.crra_eta).sum(dim=-1)
    labor_disutility = params.labor_disutility_scale * state.theta * decisions.hours
    consumer_debt = (-next_consumer_budget).clamp_min(0.0) / params.consumer_penalty_scale
    firm_debt = (-next_firm_budget).clamp_min(0.0) / params.firm_penalty_scale
    consumer_reward = utility - labor_disutility - is_last_step * penalties.consumer * consumer_debt
    firm_reward = firm_budget_change - is_last_step * penalties.firm * firm_debt
    welfare = consumer_reward.sum(dim=1) + params.welfare_firm_weight * firm_reward.sum(dim=1)

    next_state = EconomyState(
        price=next_price,
        wage=next_wage,
        inventory=next_inventory,
        overdemanded=next_overdemanded,
        income_tax=next_income_tax,
        corporate_tax=next_corporate_tax,
        time=next_time,
        consumer_budget=next_consumer_budget,
        firm_budget=next_firm_budget,
        capital=next_capital,
        theta=state.theta,
    )
    outcome = StepOutcome(
        consumption=consumption,
        labor_income=labor_income,
        income_tax_paid=income_tax_paid,
        transfer=transfer,
        consumer_reward=consumer_reward,
        production=production,
        sales=sales,
        exports=exports,
        revenue=revenue,
        wage_bill=wage_bill,
        investment=investment,
        profit=profit,
        corporate_tax_paid=corporate_tax_paid,
        firm_reward=firm_reward,
        tax_revenue=tax_revenue,
        welfare=welfare,
    )
    return next_state, outcome


def _credit_interest(budget: Tensor, rate: float) -> Tensor:
    if rate == 0.0:
        return budget
    return torch.where(budget > 0, budget * (1.0 + rate), budget)


def reset_where(mask: Tensor, fresh: EconomyState, current: EconomyState) -> EconomyState:
    """Per-economy partial reset: take `fresh` where mask (E,) is true, keep `current` elsewhere."""
    return EconomyState(
        *(torch.where(mask.view(-1, *([1] * (f.dim() - 1))), f, c) for f, c in zip(fresh, current))
    )
