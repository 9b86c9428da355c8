"""Action layouts and masks (spec section 2): how grid indices map to choices, and which are allowed.

Masks are boolean, True = allowed. Consumers use one padded mask row per head (heads have 11, 5 and
N_f choices; the padding is never allowed), firms one entry per joint (price, wage) action with
price outermost, the government one entry per joint (income, corporate) tax action with income
outermost.

The consumers' mask has a second layout: TorchRL's MultiCategorical action spec keeps its mask flat,
the heads' choices one after the other (sum of the head sizes, 125 for the reference economy).
`consumer_mask_to_flat` and `consumer_mask_to_padded` convert between the two (docs/model.md).
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


def _flat_positions(config: RBCConfig, device) -> Tensor:
    """Where each entry of the flat layout sits in the padded (heads x widest) layout, row-major."""
    return consumer_head_mask(config, device).reshape(-1).nonzero().flatten()


def consumer_mask_to_flat(mask: Tensor, config: RBCConfig) -> Tensor:
    """(..., heads, widest) padded consumer mask -> (..., sum of head sizes), TorchRL MultiCategorical's layout."""
    expected = consumer_mask_shape(config)
    if tuple(mask.shape[-2:]) != expected:
        raise ValueError(f"padded consumer mask must end in shape {expected}, got {tuple(mask.shape)}")
    return mask.flatten(-2).index_select(-1, _flat_positions(config, mask.device))


def consumer_mask_to_padded(flat: Tensor, config: RBCConfig) -> Tensor:
    """(..., sum of head sizes) flat consumer mask -> (..., heads, widest), padding False."""
    width = sum(config.consumer_head_sizes)
    if flat.shape[-1] != width:
        raise ValueError(f"flat consumer mask must end in {width} entries, got {tuple(flat.shape)}")
    heads, widest = consumer_mask_shape(config)
    padded = flat.new_zeros(*flat.shape[:-1], heads * widest)
    padded[..., _flat_positions(config, flat.device)] = flat
    return padded.reshape(*flat.shape[:-1], heads, widest)


def spec_mask(group: str, mask: Tensor, config: RBCConfig) -> Tensor | None:
    """A group's mask as its TorchRL action spec takes it: flat for consumers, None when nothing is masked.

    None rather than an all-True mask, because TorchRL cannot expand a MultiCategorical spec that
    carries a mask (SerialEnv and ParallelEnv expand every spec), and a wrapper's copy of the spec
    must compare equal to the environment's whether it was masked by `set_action_mask` or by
    `action_mask_transform`.
    """
    if group == "consumer":
        mask = consumer_mask_to_flat(mask, config)
    return None if bool(mask.all()) else mask


def uniform_allowed(mask: Tensor, batch_shape: tuple[int, ...]) -> Tensor:
    """One uniform draw among the True entries of each row of `mask`, for every batch element.

    The draw is a rank among the allowed entries. When every row allows a prefix of its choices
    (no curriculum mask, only the consumer heads' padding), the rank is the action itself, so the
    lookup table, the costliest part for 100 consumers x 12 heads, is skipped; the random numbers
    and the result are the same either way.
    """
    counts = mask.sum(-1)
    uniform = torch.rand(*batch_shape, *counts.shape, device=mask.device)
    rank = uniform.mul_(counts).long().clamp_max_(counts - 1)
    if torch.equal(mask, torch.arange(mask.shape[-1], device=mask.device) < counts.unsqueeze(-1)):
        return rank
    allowed_first = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True)
    table = allowed_first.expand(*batch_shape, *allowed_first.shape)
    return table.gather(-1, rank.unsqueeze(-1)).squeeze(-1)


def out_of_range(group: str, action: Tensor, sizes: Tensor | int) -> str | None:
    """None if every action lies in [0, size); else a message naming the first offending agent.

    `action` is (economies, agents) or, for multi-head consumers, (economies, agents, heads) with
    `sizes` the choices per head. The common case costs two comparisons and one reduction; the
    message is built only on failure.
    """
    bad = (action < 0) | (action >= sizes)
    if not bool(bad.any()):
        return None
    where = bad.nonzero()[0].tolist()
    value = int(action[tuple(where)])
    if isinstance(sizes, Tensor) and sizes.dim() == 1:
        economy, agent, head = where
        choices = int(sizes[head])
        place = f"agent {agent} ({group}_{agent}), head {head}"
    else:
        economy, agent = where
        choices = int(sizes)
        place = f"agent {agent} ({group}_{agent})"
    return (f"{group} action out of range in economy {economy}, {place}: got {value}; "
            f"allowed: 0..{choices - 1} ({choices} choices)")


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
