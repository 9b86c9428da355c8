"""`summary.md` rendered from `summary.json` alone by the template `templates/summary.md.j2`.

The template does no arithmetic (tests/test_report.py checks its syntax tree) and fails on any key the
summary lacks, so every number in the text is a number of the JSON, only formatted by the filters below.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from .stats import finite

TEMPLATE = "summary.md.j2"


def num(x: Any) -> str:
    """Three significant figures for small numbers, thousands separators for large ones."""
    if x is None or not finite(x):
        return "n/a"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a == 0:
        return "0"
    return f"{x:.3g}"


def ci(stat: dict | None) -> str:
    if not stat:
        return "n/a"
    lo, hi = stat["ci95"]
    return f"[{num(lo)}, {num(hi)}]"


def cells(stat: dict | None) -> str:
    """A mean and its interval as two table cells."""
    return f"{num(stat['mean'])} | {ci(stat)}" if stat else "n/a | n/a"


def seed_cell(stat: dict | None) -> str:
    """One seed's mean and its interval over economy-episodes, in one cell: "12.3 [11.0, 13.6]"."""
    return f"{num(stat['mean'])} {ci(stat)}" if stat else "n/a"


def over_cells(stat: dict) -> str:
    """An over-seed statistic as four cells: mean | t-interval | sd | seeds (the interval n/a for one seed)."""
    return f"{num(stat['mean'])} | {ci(stat)} | {num(stat['sd'])} | {stat['seeds']}"


def pct(x: Any) -> str:
    return "n/a" if x is None or not finite(x) else f"{100 * x:.2f}%"


def pct_cells(stat: dict) -> str:
    """A fraction's mean and interval as two table cells of percentages."""
    lo, hi = stat["ci95"]
    return f"{pct(stat['mean'])} | [{pct(lo)}, {pct(hi)}]"


def rate(x: Any) -> str:
    """A tax rate or fraction (a number or a JSON key such as "0.2") as a whole percentage."""
    return f"{float(x):.0%}"


def rates(values: list[float]) -> str:
    """A list of rates as "20/40/60/80%"."""
    return "/".join(f"{100 * r:g}" for r in values) + "%"


def ratio_text(x: Any) -> str:
    return num(x) if finite(x) else "undefined (the reference welfare is not positive)"


def yes_no(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def general(x: Any) -> str:
    return f"{x:g}"


def fixed(x: Any, digits: int) -> str:
    return f"{x:.{digits}f}"


def branch_label(branch: str, branch_rates: dict) -> str:
    """A fixed-tax branch by its rates ("fixed 20%", "fixed 0% income / 40% corporate"), any other by its name."""
    value = branch_rates.get(branch)
    if value is None:
        return branch
    income, corporate = value
    if income == corporate:
        return f"fixed {rate(income)}"
    return f"fixed {rate(income)} income / {rate(corporate)} corporate"


def label(name: str) -> str:
    return name.replace("_", " ")


def pluck(mapping: dict, *path: str) -> dict:
    """The same entry of every value of a mapping: {key: value[path[0]][path[1]]...}."""
    out = {}
    for key, value in mapping.items():
        for step in path:
            value = value[step]
        out[key] = value
    return out


def strict(fn: Callable) -> Callable:
    """A filter that refuses a missing key: formatting it as n/a would hide that the summary lacks the number."""

    @functools.wraps(fn)
    def checked(*args: Any) -> Any:
        for arg in args:
            if isinstance(arg, jinja2.Undefined):
                str(arg)  # a StrictUndefined raises UndefinedError here, naming the missing key
        return fn(*args)

    return checked


FILTERS = {name: strict(fn) for name, fn in {
    "num": num, "ci": ci, "cells": cells, "seed_cell": seed_cell, "over_cells": over_cells, "pct": pct,
    "pct_cells": pct_cells, "rate": rate, "rates": rates, "ratio_text": ratio_text, "yes_no": yes_no, "g": general,
    "fixed": fixed, "branch_label": branch_label, "label": label, "pluck": pluck,
}.items()}


def environment() -> jinja2.Environment:
    """Block tags on their own lines leave no trace; a key the summary lacks is an error, not an empty cell."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.analysis.report", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    return env


def render_markdown(summary: dict) -> str:
    """The report's markdown from the summary dictionary as stored in summary.json."""
    return environment().get_template(TEMPLATE).render(**summary)


def render_file(summary_json: Path) -> str:
    return render_markdown(json.loads(summary_json.read_text()))
