"""Action layouts and masks (spec section 2): how grid indices map to choices, and which are allowed.

Masks are boolean, True = allowed. Consumers use one padded mask row per head (heads have 11, 5 and
N_f choices; the padding is never allowed), firms one entry per joint (price, wage) action with
price outermost, the government one entry per joint (income, corporate) tax action with income
outermost.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .config import RBCConfig


def consumer_mask_shape(config: RBCConfig) -> tuple[int, int]:
    return (config.n_consumer_heads, max(config.consumer_head_sizes))


def consumer_head_mask(config: RBCConfig, device: torch.device | str = "cpu") -> Tensor:
    """(heads, max choices): every real choice allowed, the padding of shorter heads never."""
    sizes = torch.tensor(config.consumer_head_sizes, device=device)
    return torch.arange(max(config.consumer_head_sizes), device=device) < sizes.unsqueeze(-1)


def _grid_range(grid: list[float], low: float, high: float, device) -> Tensor:
    values = torch.tensor(grid, dtype=torch.float64, device=device)
    return (values >= low - 1e-9) & (values <= high + 1e-9)


def firm_mask_from_ranges(
    config: RBCConfig,
    price_range: tuple[float, float],
    wage_range: tuple[float, float],
    device: torch.device | str = "cpu",
) -> Tensor:
    """(n_firm_actions,): joint actions whose price and wage both lie in the closed ranges."""
    prices = _grid_range(config.price_grid, *price_range, device)
    wages = _grid_range(config.wage_grid, *wage_range, device)
    return (prices.unsqueeze(-1) & wages.unsqueeze(0)).reshape(-1)


def government_mask_from_caps(
    config: RBCConfig, max_income_tax: float, max_corporate_tax: float, device: torch.device | str = "cpu"
) -> Tensor:
    """(n_government_actions,): joint tax actions with both rates at or below their caps."""
    income = _grid_range(config.income_tax_grid, -float("inf"), max_income_tax, device)
    corporate = _grid_range(config.corporate_tax_grid, -float("inf"), max_corporate_tax, device)
    return (income.unsqueeze(-1) & corporate.unsqueeze(0)).reshape(-1)


def firm_action_index(config: RBCConfig, price_index: int, wage_index: int) -> int:
    return price_index * len(config.wage_grid) + wage_index


def government_action_index(config: RBCConfig, income_index: int, corporate_index: int) -> int:
    return income_index * len(config.corporate_tax_grid) + corporate_index


def fixed_tax_action(config: RBCConfig, income_tax: float, corporate_tax: float) -> int:
    """The joint government action for a pair of rates on the grids (fixed-tax baselines)."""
    try:
        income_index = _index_on_grid(config.income_tax_grid, income_tax)
        corporate_index = _index_on_grid(config.corporate_tax_grid, corporate_tax)
    except ValueError as err:
        raise ValueError(f"fixed tax ({income_tax}, {corporate_tax}) is not on the tax grids: {err}") from None
    return government_action_index(config, income_index, corporate_index)


def _index_on_grid(grid: list[float], value: float) -> int:
    for index, point in enumerate(grid):
        if abs(point - value) < 1e-9:
            return index
    raise ValueError(f"{value} not in {grid}")
