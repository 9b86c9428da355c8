"""What an episode's rollout says about the economy, as named scalars and per-economy samples.

`economy_samples` reduces a rollout to one number per economy and quantity (one sample per
economy-episode); training logs their means, evaluation their means with 95% confidence
intervals.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch
from tensordict import TensorDictBase

from envs.rbc.config import RBCConfig

from .files import atomic_write_text


def economy_samples(data: TensorDictBase, economy: RBCConfig) -> dict[str, torch.Tensor]:
    """(E,)-shaped samples from a (E, T) rollout.

    Rewards are per-agent episode returns (summed over steps, averaged over the type's agents);
    welfare is summed over steps in both variants; prices, wages and tax rates are averaged over
    steps 1..T-1 (the ones the agents chose; step 0 runs at the initial state's values).
    """
    nxt = data.get("next")
    consumer_return = nxt.get(("consumer", "reward")).squeeze(-1).sum(1)  # (E, C)
    firm_return = nxt.get(("firm", "reward")).squeeze(-1).sum(1)  # (E, F)
    consumer_total = consumer_return.sum(-1)
    firm_total = firm_return.sum(-1)
    chosen = slice(1, None) if data.shape[1] > 1 else slice(None)
    hours = nxt.get(("consumer", "hours"))  # (E, T, C)
    consumption = nxt.get(("consumer", "consumption")).sum(-1)  # (E, T, C) units over goods
    sales = nxt.get(("firm", "sales"))
    exports = nxt.get(("firm", "exports"))
    price = nxt.get(("firm", "price"))
    return {
        "reward/consumer": consumer_return.mean(-1),
        "reward/firm": firm_return.mean(-1),
        "reward/government": nxt.get(("government", "reward")).reshape(data.shape[0], -1).sum(-1),
        "welfare/total": consumer_total + economy.firm_welfare_weight * firm_total,
        "welfare/consumer_only": consumer_total,
        "economy/price": price[:, chosen].mean((1, 2)),
        "economy/wage": nxt.get(("firm", "wage"))[:, chosen].mean((1, 2)),
        "economy/hours": hours.mean((1, 2)),
        "economy/employed_share": (hours > 0).float().mean((1, 2)),
        "economy/consumption": consumption.mean((1, 2)),
        "economy/production": nxt.get(("firm", "production")).mean((1, 2)),
        "economy/sales": sales.mean((1, 2)),
        "economy/exports": exports.mean((1, 2)),
        "economy/domestic_share": sales.sum((1, 2)) / (sales + exports).sum((1, 2)).clamp_min(1e-9),
        "economy/income_tax_rate": nxt.get(("government", "income_tax_rate"))[:, chosen].mean((1, 2)),
        "economy/corporate_tax_rate": nxt.get(("government", "corporate_tax_rate"))[:, chosen].mean((1, 2)),
        "economy/firm_budget_end": nxt.get(("firm", "budget"))[:, -1].mean(-1),
        "economy/consumer_budget_end": nxt.get(("consumer", "budget"))[:, -1].mean(-1),
        **responsiveness(data),
    }


def responsiveness(data: TensorDictBase) -> dict[str, torch.Tensor]:
    """Do consumers react to prices and wages? Each measure is zero for a policy that ignores them.

    - `behaviour/employer_wage_premium`: wage of the chosen employer minus the mean posted wage,
      over the consumer-steps with hours > 0;
    - `behaviour/demand_price_slope`: least-squares slope of the units a consumer tries to buy of
      a good on that good's price, in units per 1000 of price (negative = demand falls with price);
    - `behaviour/hours_wage_slope`: slope of hours on the chosen employer's wage (hours per unit
      of wage; positive = more work at higher wages).
    """
    nxt = data.get("next")
    wage = nxt.get(("firm", "wage"))  # (E, T, F) in effect during each step
    employer = nxt.get(("consumer", "employer"))  # (E, T, C)
    hours = nxt.get(("consumer", "hours"))
    working = (hours > 0).float()
    employer_wage = torch.gather(wage, 2, employer)
    premium = employer_wage - wage.mean(-1, keepdim=True)
    wage_premium = (premium * working).sum((1, 2)) / working.sum((1, 2)).clamp_min(1.0)
    price = nxt.get(("firm", "price"))
    n_firms = price.shape[-1]
    attempted = data.get(("consumer", "action"))[..., :n_firms].float()  # grid index ~ units
    return {
        "behaviour/employer_wage_premium": wage_premium,
        "behaviour/demand_price_slope": 1000.0 * _slope(price.unsqueeze(2).expand_as(attempted), attempted),
        "behaviour/hours_wage_slope": _slope(employer_wage, hours),
    }


def _slope(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-economy least-squares slope of y on x over all but the leading dim."""
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)
    xc = x - x.mean(1, keepdim=True)
    yc = y - y.mean(1, keepdim=True)
    return (xc * yc).sum(1) / (xc * xc).sum(1).clamp_min(1e-9)


def episode_metrics(data: TensorDictBase, economy: RBCConfig) -> dict[str, float]:
    return {key: float(value.mean()) for key, value in economy_samples(data, economy).items()}


# Student t quantiles t(0.975, dof) for dof 1..30 (standard tables); beyond, the Cornish-Fisher expansion.
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
         2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
         2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)
_Z975 = 1.959963985


def t975(dof: int) -> float:
    """The 97.5% quantile of Student's t with `dof` degrees of freedom (a two-sided 95% interval)."""
    if dof < 1:
        raise ValueError(f"a t quantile needs at least one degree of freedom, not {dof}")
    if dof <= len(_T975):
        return _T975[dof - 1]
    z, v = _Z975, float(dof)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def mean_ci95(samples: list[float] | torch.Tensor) -> dict[str, float | list[float]]:
    """Mean and Student-t 95% confidence interval of the mean (n - 1 degrees of freedom)."""
    x = torch.as_tensor(samples, dtype=torch.float64).flatten()
    n = x.numel()
    mean = float(x.mean()) if n else float("nan")
    half = t975(n - 1) * float(x.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": n}


class MetricsLog:
    """Append-only CSV of per-episode metrics, tolerant of columns appearing later.

    The file is always rewritten whole and atomically, so it is damaged only from outside (a copy cut
    short, a disk error). Reading keeps the complete rows before the first damaged one and counts the
    rest in `damaged`; whether the kept rows are enough is the caller's decision (`missing`).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []
        self.damaged = 0
        if self.path.exists():
            text = self.path.read_text()
            lines = list(csv.reader(io.StringIO(text, newline="")))
            header, body = (lines[0], lines[1:]) if lines else ([], [])
            complete = len(body) if text.endswith("\n") else len(body) - 1  # a last line cut short
            for i, values in enumerate(body):
                row = _row(header, values) if i < complete else None
                if row is None:
                    self.damaged = len(body) - i
                    break
                self.rows.append(row)

    def truncate(self, episode: int) -> None:
        """Forget rows at or after `episode` (a resumed run recomputes them identically)."""
        self.rows = [row for row in self.rows if row.get("episode", -1) < episode]

    def missing(self, start: int, end: int) -> list[int]:
        """Episodes in [start, end) without a row."""
        have = {row.get("episode") for row in self.rows}
        return [e for e in range(start, end) if e not in have]

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(dict(row))

    def flush(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, text.getvalue())


def _row(header: list[str], values: list[str]) -> dict[str, float] | None:
    """One CSV row as numbers, or None when it is cut short or holds something that is not a number."""
    if len(values) != len(header) or "episode" not in header:
        return None
    try:
        row = {k: _parse(v) for k, v in zip(header, values) if v != ""}
    except ValueError:
        return None
    return row if "episode" in row else None


def _parse(text: str) -> int | float:
    """Integers stay integers, so rows read back are written out exactly as they were first written."""
    return int(text) if text.lstrip("-").isdigit() else float(text)
