"""Every number of the RBC economy in one validated, YAML-round-trippable dataclass.

The defaults are the reference configuration of the specification (sections 1, 2 and 13); the
section-13 choices are fields too, so a user can switch back to the paper's or the reference code's
variant without touching code. Sizes are free: the same class describes a 2-consumer test economy
and the 100/10/1 paper economy.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

# The reference code's production exponents for one capital group of five firms (spec 1.3).
ALPHA_PATTERN = (0.2, 0.3, 0.4, 0.6, 0.8)
LOW_CAPITAL, HIGH_CAPITAL = 5000.0, 10000.0

ENCODINGS = ("digits", "symlog")
WELFARE_VARIANTS = ("total", "consumer_only")
INVESTMENT_RULES = ("operating_income", "budget")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field, the value and what is allowed."""


class _Yaml12FloatLoader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where 5e-5 (no dot) is text; config authors mean a number."""


_Yaml12FloatLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """Safe YAML loading in which exponent floats without a dot (1e-3) are numbers."""
    return yaml.load(text, Loader=_Yaml12FloatLoader)


def _two_level_capital(n_firms: int) -> list[float]:
    low = n_firms - n_firms // 2
    return [LOW_CAPITAL] * low + [HIGH_CAPITAL] * (n_firms - low)


def _two_level_alpha(n_firms: int) -> list[float]:
    """Spread the five-value pattern over each capital group, exactly the spec's list at N_f = 10."""
    groups = [n_firms - n_firms // 2, n_firms // 2]
    alpha: list[float] = []
    for size in groups:
        if size == 0:
            continue
        if size == 1:
            picks = [len(ALPHA_PATTERN) // 2]
        else:
            picks = [round(k * (len(ALPHA_PATTERN) - 1) / (size - 1)) for k in range(size)]
        alpha.extend(ALPHA_PATTERN[p] for p in picks)
    return alpha


@dataclass
class RBCConfig:
    """The economy of `docs/model.md`; field names follow the specification's symbols.

    List-valued fields that depend on the number of firms (`alpha`, `initial_capital`) default to
    `None`, meaning "the spec's two-level pattern for this many firms"; they are resolved in
    `__post_init__`, so a saved config always holds the explicit lists.
    """

    # --- agents and time (spec 1.1, 1.2)
    n_consumers: int = 100
    n_firms: int = 10
    episode_length: int = 10

    # --- action grids (spec 2)
    consumption_grid: list[float] = field(default_factory=lambda: [float(k) for k in range(11)])
    hours_grid: list[float] = field(default_factory=lambda: [0.0, 260.0, 520.0, 780.0, 1040.0])
    price_grid: list[float] = field(default_factory=lambda: [0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0])
    wage_grid: list[float] = field(default_factory=lambda: [0.0, 11.0, 22.0, 33.0, 44.0])
    income_tax_grid: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    corporate_tax_grid: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    investment_fraction: float = 0.1

    # --- initial state (spec 1.3)
    initial_price: float = 1000.0
    initial_wage: float = 0.0
    initial_inventory: float = 0.0
    initial_income_tax: float = 0.0
    initial_corporate_tax: float = 0.0
    initial_consumer_budget: float = 2000.0
    initial_firm_budget: float = 2_200_000.0
    initial_capital: list[float] | None = None
    alpha: list[float] | None = None

    # --- preferences and technology (spec 1.3, 5.1)
    productivity: float = 0.01
    crra_eta: float = 0.1
    labor_disutility: float = 0.01
    pareto_shape: float = 4.0
    labor_disutility_scale: float = 0.5
    interest_rate: float = 0.0
    labor_floor: float = 0.0

    # --- export market (spec 3 step 7)
    open_economy: bool = True
    export_min_price: float = 500.0
    export_quantity_cap: float = 100.0
    export_price_inclusive: bool = True

    # --- project decisions (spec 13)
    investment_rule: str = "operating_income"
    consumer_budget_guard: float = 0.0
    welfare: str = "total"
    firm_welfare_weight: float = 0.0025
    observation_encoding: str = "symlog"
    n_digits: int = 10

    # --- no-Ponzi penalty (spec 5.4): multipliers start here and are set by the curriculum
    consumer_no_ponzi_multiplier: float = 0.0
    firm_no_ponzi_multiplier: float = 0.0
    consumer_penalty_scale: float = 1.0
    firm_penalty_scale: float = 100.0

    # --- curriculum-controlled factor applied to theta at every reset (spec 6)
    labor_disutility_anneal: float = 1.0

    # --- runtime checks
    check_action_masks: bool = True

    def __post_init__(self) -> None:
        if self.initial_capital is None and _is_positive_int(self.n_firms):
            self.initial_capital = _two_level_capital(self.n_firms)
        if self.alpha is None and _is_positive_int(self.n_firms):
            self.alpha = _two_level_alpha(self.n_firms)
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def n_consumer_heads(self) -> int:
        """One head per good, one for hours, one for the employer."""
        return self.n_firms + 2

    @property
    def consumer_head_sizes(self) -> list[int]:
        return [len(self.consumption_grid)] * self.n_firms + [len(self.hours_grid), self.n_firms]

    @property
    def n_firm_actions(self) -> int:
        return len(self.price_grid) * len(self.wage_grid)

    @property
    def n_government_actions(self) -> int:
        return len(self.income_tax_grid) * len(self.corporate_tax_grid)

    @property
    def welfare_firm_weight(self) -> float:
        """Weight of firm reward in the government's objective for the configured variant."""
        return self.firm_welfare_weight if self.welfare == "total" else 0.0

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field, its value and what is allowed."""
        for name in ("n_consumers", "n_firms", "episode_length", "n_digits"):
            value = getattr(self, name)
            if not _is_positive_int(value):
                _fail(name, value, "a positive integer")
        for name in (
            "consumption_grid",
            "hours_grid",
            "price_grid",
            "wage_grid",
            "income_tax_grid",
            "corporate_tax_grid",
        ):
            _check_grid(name, getattr(self, name))
            setattr(self, name, [float(v) for v in getattr(self, name)])
        for name in ("income_tax_grid", "corporate_tax_grid"):
            grid = getattr(self, name)
            if any(v > 1 for v in grid):
                _fail(name, grid, "tax rates in [0, 1]")
        for name in ("initial_capital", "alpha"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or len(value) != self.n_firms:
                _fail(name, value, f"a list of {self.n_firms} numbers (one per firm, n_firms={self.n_firms})")
            if not all(_is_number(v) for v in value):
                _fail(name, value, "numbers only")
        if any(k <= 0 for k in self.initial_capital):
            _fail("initial_capital", self.initial_capital, "capital > 0 for every firm")
        if any(not 0 < a < 1 for a in self.alpha):
            _fail("alpha", self.alpha, "labor exponents strictly between 0 and 1")
        self.initial_capital = [float(k) for k in self.initial_capital]
        self.alpha = [float(a) for a in self.alpha]

        nonneg = (
            "initial_price",
            "initial_wage",
            "initial_inventory",
            "initial_consumer_budget",
            "productivity",
            "labor_disutility",
            "labor_disutility_scale",
            "interest_rate",
            "labor_floor",
            "export_min_price",
            "export_quantity_cap",
            "consumer_budget_guard",
            "firm_welfare_weight",
            "consumer_no_ponzi_multiplier",
            "firm_no_ponzi_multiplier",
        )
        for name in nonneg:
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or not math.isfinite(value):
                _fail(name, value, "a finite number >= 0")
        for name in ("initial_income_tax", "initial_corporate_tax", "investment_fraction", "labor_disutility_anneal"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                _fail(name, value, "a number in [0, 1]")
        if not _is_number(self.initial_firm_budget) or not math.isfinite(self.initial_firm_budget):
            _fail("initial_firm_budget", self.initial_firm_budget, "a finite number")
        for name in ("crra_eta",):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value < 1:
                _fail(name, value, "a number in [0, 1) (eta = 1 would be log utility)")
        for name in ("pareto_shape", "consumer_penalty_scale", "firm_penalty_scale"):
            value = getattr(self, name)
            if not _is_number(value) or value <= 0:
                _fail(name, value, "a number > 0")
        for name in ("open_economy", "export_price_inclusive", "check_action_masks"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, getattr(self, name), "true or false")
        _check_choice("observation_encoding", self.observation_encoding, ENCODINGS)
        _check_choice("welfare", self.welfare, WELFARE_VARIANTS)
        _check_choice("investment_rule", self.investment_rule, INVESTMENT_RULES)

    # ------------------------------------------------------------------ YAML
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RBCConfig":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown economy config key(s) {unknown}; allowed keys: {sorted(known)}"
            )
        return cls(**data)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RBCConfig":
        return cls.from_yaml_text(Path(path).read_text())

    @classmethod
    def from_yaml_text(cls, text: str) -> "RBCConfig":
        data = load_yaml(text)
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"economy config must be a mapping of keys to values, got {type(data).__name__}")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "RBCConfig":
        """A copy with some fields changed; per-firm lists follow a new firm count unless given."""
        data = self.to_dict()
        if "n_firms" in changes:
            data["alpha"] = data["initial_capital"] = None
        data.update(changes)
        return RBCConfig.from_dict(data)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"invalid economy config: {name}={value!r}; allowed: {allowed}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(name, value, " | ".join(choices))


def _check_grid(name: str, grid: Any) -> None:
    if not isinstance(grid, (list, tuple)) or len(grid) == 0:
        _fail(name, grid, "a non-empty list of numbers")
    if not all(_is_number(v) and math.isfinite(v) for v in grid):
        _fail(name, grid, "finite numbers only")
    if any(v < 0 for v in grid):
        _fail(name, grid, "values >= 0")
    if any(b <= a for a, b in zip(grid, grid[1:])):
        _fail(name, grid, "strictly increasing values")
