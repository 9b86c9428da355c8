"""The numbers README.md and docs/results.md quote are the committed summary.json's, so they cannot drift.

Every over-seed figure is recomputed here from each seed's own mean in summary.json, not read from the
report's over-seed entries: the mean of the per-seed values (or of their paired differences) with the
Student-t 95% interval on seeds - 1 degrees of freedom, from a table of t quantiles that is itself checked
against the t distribution's density. The best fixed tax is chosen here too, from the per-seed means of
every fixed-tax branch. Each figure is then looked for in the documents as they write it, e.g.
+720 [-186, 1,625], and a difference whose interval holds zero must be called indistinguishable there.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = json.loads((ROOT / "results" / "default" / "summary.json").read_text())
PROFILE = yaml.safe_load((ROOT / "workflow" / "config" / "default.yaml").read_text())


def flat(text: str) -> str:
    """The document with every run of whitespace as one space, so a figure may wrap across lines."""
    return " ".join(text.split())


README = flat((ROOT / "README.md").read_text())
RESULTS = flat((ROOT / "docs" / "results.md").read_text())
# Student t, 97.5% quantile, by degrees of freedom
T_975 = {1: 12.706204736174698, 2: 4.302652729749464, 3: 3.182446305284263, 4: 2.7764451051977987,
         5: 2.570581835636314, 6: 2.4469118511449692}


# ------------------------------------------------------------------------------------------------ statistics
def t_cdf(x: float, df: int, steps: int = 20000) -> float:
    """P(T <= x) for x >= 0: one half plus Simpson's rule over the t density from 0 to x."""
    norm = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    h = x / steps
    total = sum((1 if i in (0, steps) else 4 if i % 2 else 2) * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2)
                for i in range(steps + 1))
    return 0.5 + norm * total * h / 3


def over_seeds(values: list[float]) -> tuple[float, float, float]:
    """Mean with its Student-t 95% interval over the values, one per seed."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T_975[n - 1] * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def written(values: list[float], digits: int = 0, signed: bool = True, scale: float = 1.0, unit: str = "") -> str:
    """The documents' form of an over-seed figure: +720 [-186, 1,625], or 0.62% [...] with scale 100."""
    mean, low, high = (scale * x for x in over_seeds(values))
    sign = "+" if signed else ""
    return f"{mean:{sign},.{digits}f}{unit} [{low:,.{digits}f}{unit}, {high:,.{digits}f}{unit}]"


def per_seed_list(values: list[float], digits: int = 0, signed: bool = True, scale: float = 1.0,
                  unit: str = "") -> str:
    sign = "+" if signed else ""
    return ", ".join(f"{scale * v:{sign},.{digits}f}{unit}" for v in values)


# ------------------------------------------------------------------------------------------------ summary.json
def seeds(economy: str) -> list[str]:
    return [str(s) for s in SUMMARY["seeds"][economy]]


def outcome(economy: str, branch: str, metric: str) -> list[float]:
    """Each seed's evaluated mean of one outcome of one branch."""
    per_seed = SUMMARY["economies"][economy]["outcomes"][branch][metric]["per_seed"]
    return [per_seed[s]["mean"] for s in seeds(economy)]


def paired(economy: str, branch: str, baseline: str, metric: str) -> list[float]:
    return [a - b for a, b in zip(outcome(economy, branch, metric), outcome(economy, baseline, metric))]


def best_fixed(economy: str, metric: str, candidates=None) -> str:
    """The fixed-tax branch with the highest mean over seeds, among all of them or the given ones."""
    rates = SUMMARY["setup"]["branch_rates"]
    fixed = [b for b, r in rates.items() if r is not None and b in SUMMARY["economies"][economy]["outcomes"]]
    fixed = [b for b in fixed if candidates is None or candidates(*rates[b])]
    return max(fixed, key=lambda b: sum(outcome(economy, b, metric)))


def epsilon(economy: str, kind: str) -> dict:
    return SUMMARY["economies"][economy]["epsilon"]["learned"][kind]


def seed_entries(economy: str, kind: str) -> list[dict]:
    return [epsilon(economy, kind)["per_seed"][s] for s in seeds(economy)]


def type_gaps(economy: str, kind: str) -> list[float]:
    """Each seed's type-level gap: the largest gain of the type's learners (the power check and one agent alone
    are not learners of the type)."""
    learners = epsilon(economy, kind)["learners"]
    return [max(p["gain"]["mean"] for name, p in e["probes"].items() if name in learners)
            for e in seed_entries(economy, kind)]


CAP = PROFILE["consumer_welfare_max_corporate_tax"]
COMPARISONS = {  # claim -> (economy, branch, baseline chooser, metric)
    "open: learned - the paper's best equal rate": ("open", "learned", "equal", "welfare_total"),
    "open: learned - the best fixed tax": ("open", "learned", "all", "welfare_total"),
    "open: consumer-welfare - the paper's best equal rate": ("open", "consumer_welfare", "equal",
                                                             "welfare_consumer_only"),
    "open: consumer-welfare - the best fixed tax": ("open", "consumer_welfare", "all", "welfare_consumer_only"),
    "open: consumer-welfare - the best fixed tax inside its cap": ("open", "consumer_welfare", "cap",
                                                                    "welfare_consumer_only"),
    "open: no curriculum - curriculum": ("open", "nocurriculum", "learned", "welfare_total"),
    "closed: learned - the paper's best equal rate": ("closed", "learned", "equal", "welfare_total"),
    "closed: learned - the best fixed tax": ("closed", "learned", "all", "welfare_total"),
    "closed: consumer-welfare - the best fixed tax": ("closed", "consumer_welfare", "all", "welfare_consumer_only"),
    "closed: no curriculum - curriculum": ("closed", "nocurriculum", "learned", "welfare_total"),
}
IN_README = ["open: learned - the paper's best equal rate", "open: learned - the best fixed tax",
             "open: consumer-welfare - the paper's best equal rate",
             "open: consumer-welfare - the best fixed tax inside its cap", "open: no curriculum - curriculum",
             "closed: no curriculum - curriculum"]


def baseline_of(economy: str, chooser: str, metric: str) -> str:
    if chooser == "equal":
        return best_fixed(economy, metric, lambda income, corporate: income == corporate and income > 0)
    if chooser == "all":
        return best_fixed(economy, metric)
    if chooser == "cap":
        return best_fixed(economy, metric, lambda income, corporate: corporate <= CAP)
    return chooser


def comparison(claim: str) -> tuple[str, list[float]]:
    economy, branch, chooser, metric = COMPARISONS[claim]
    differences = paired(economy, branch, baseline_of(economy, chooser, metric), metric)
    return written(differences), differences


# ------------------------------------------------------------------------------------------------ the checks
@pytest.mark.parametrize("df", sorted(T_975))
def test_the_t_table_is_the_975_quantile_of_the_t_distribution(df):
    assert t_cdf(T_975[df], df) == pytest.approx(0.975, abs=1e-7)


def test_the_over_seed_interval_matches_a_hand_example():
    # differences 1..5: mean 3, s = sqrt(2.5), s / sqrt(5) = 0.7071, half = 2.7764 x 0.7071 = 1.963
    assert written([1.0, 2.0, 3.0, 4.0, 5.0], digits=2) == "+3.00 [1.04, 4.96]"
    # two seeds 1 and 3: mean 2, s / sqrt(2) = 1, half = 12.706
    assert written([1.0, 3.0]) == "+2 [-11, 15]"


def test_the_best_fixed_taxes_are_the_documented_branches():
    """The choosers above pick what the report and the text name: the grid's best point is a zero tax on total
    welfare and a 60% profit tax on consumer welfare, 40% inside the consumer-welfare government's cap."""
    assert CAP == 0.5
    assert baseline_of("open", "equal", "welfare_total") == "fixed20"
    assert baseline_of("open", "all", "welfare_total") == "fixed00"
    assert baseline_of("open", "all", "welfare_consumer_only") == "fixed00c60"
    assert baseline_of("open", "cap", "welfare_consumer_only") == "fixed00c40"
    for claim in COMPARISONS:
        economy, branch, chooser, metric = COMPARISONS[claim]
        name = "within_cap" if chooser == "cap" else "equal_rate" if chooser == "equal" else "every_fixed"
        if chooser in ("equal", "all", "cap") and branch != "nocurriculum":
            report = SUMMARY["economies"][economy]["welfare"][branch][name]["best"]["branch"]
            assert report == baseline_of(economy, chooser, metric), claim


@pytest.mark.parametrize("claim", sorted(COMPARISONS))
def test_results_md_quotes_every_over_seed_comparison_with_its_verdict(claim):
    quoted, _ = comparison(claim)
    assert quoted in RESULTS, f"{claim}: {quoted}"
    low, high = (float(x.replace(",", "")) for x in quoted.split("[")[1].rstrip("]").split(", "))
    start = 0
    while (at := RESULTS.find(quoted, start)) >= 0:
        after = RESULTS[at + len(quoted):][:160]
        if low <= 0 <= high:
            assert "indistinguishable" in after, f"{claim}: {quoted} {after}"
        else:
            assert "indistinguishable" not in after[:60], f"{claim}: {quoted} {after}"
        start = at + 1


@pytest.mark.parametrize("claim", IN_README)
def test_readme_quotes_the_headline_comparisons(claim):
    quoted, _ = comparison(claim)
    assert quoted in README, f"{claim}: {quoted}"
    assert "intervals disjoint" not in README


@pytest.mark.parametrize("claim", sorted(COMPARISONS))
def test_results_md_lists_each_seeds_difference(claim):
    _, differences = comparison(claim)
    assert per_seed_list(differences) in RESULTS, claim


def test_the_open_economys_outcomes_are_quoted_as_summary_json_gives_them():
    o = lambda metric, branch="learned": outcome("open", branch, metric)  # noqa: E731
    for figure in [written(o("hours"), signed=False), written(o("production"), 1, signed=False),
                   written(o("consumption"), 2, signed=False), written(o("consumer_reward"), 2, signed=False),
                   written(o("firm_reward"), signed=False), written(o("price"), signed=False),
                   written(o("wage"), 2, signed=False), written(o("domestic_share"), 1, False, 100, "%"),
                   written(o("welfare_total"), signed=False), written(o("welfare_total", "fixed00"), signed=False),
                   written(o("welfare_total", "fixed20"), signed=False),
                   written(o("welfare_consumer_only", "consumer_welfare"), signed=False),
                   written(o("welfare_consumer_only", "fixed00c60"), signed=False),
                   written(o("welfare_consumer_only", "fixed00c40"), signed=False)]:
        assert figure in RESULTS, figure
    mean = lambda metric: sum(o(metric)) / len(o(metric))  # noqa: E731
    assert f"({100 * mean('exports') / mean('production'):.0f}% of what they make)" in RESULTS  # not of sales
    per_step = sum(o("firm_reward")) / len(o("firm_reward")) / SUMMARY["episode_length"]
    assert f"firm profit {per_step:,.0f} per firm and step" in RESULTS


def test_the_learned_tax_rates_are_quoted_as_summary_json_gives_them():
    rates = SUMMARY["economies"]["open"]["learned_tax_rates"]
    mean = lambda government, tax: over_seeds([rates[government][tax]["per_seed"][s]["mean"]  # noqa: E731
                                               for s in seeds("open")])[0]
    assert f"income {100 * mean('learned', 'income'):.2f}%, corporate {100 * mean('learned', 'corporate'):.2f}%" \
        in RESULTS
    assert f"corporate {100 * mean('consumer_welfare', 'corporate'):.1f}% and income " \
           f"{100 * mean('consumer_welfare', 'income'):.1f}%" in RESULTS
    for tax in ("income", "corporate"):
        values = [rates["consumer_welfare"][tax]["per_seed"][s]["mean"] for s in seeds("open")]
        assert written(values, 1, False, 100, "%") in RESULTS, tax


@pytest.mark.parametrize("kind", ["consumer", "firm"])
def test_the_single_agent_deviations_are_quoted_as_summary_json_gives_them(kind):
    entries = seed_entries("open", kind)
    gains = [e["individual"]["gain"]["mean"] for e in entries]
    digits = 3 if kind == "consumer" else 0
    quoted = written(gains, digits)
    assert quoted in RESULTS and quoted in README
    relative = [e["individual"]["gain"]["mean"] / abs(e["individual"]["trained"]["mean"]) for e in entries]
    assert per_seed_list(relative, 2, False, 100, "%") in RESULTS


@pytest.mark.parametrize("kind, digits", [("consumer", 3), ("firm", 0), ("government", 0)])
def test_the_type_level_gaps_and_their_power_are_quoted_as_summary_json_gives_them(kind, digits):
    entries = seed_entries("open", kind)
    gaps = type_gaps("open", kind)
    assert written(gaps, digits, signed=False) in RESULTS, kind
    relative = [g / e["training_gain"]["mean"] for g, e in zip(gaps, entries)]
    worst = max(range(len(relative)), key=relative.__getitem__)
    assert f"{100 * relative[worst]:.2f}% (seed {seeds('open')[worst]})" in RESULTS, kind
    assert relative[worst] < epsilon("open", kind)["bound"]
    # power: from an untrained network the gain must clear the bound times |trained reward| with its interval
    for e in entries:
        power = e["probes"]["power"]["gain"]
        assert power["ci95"][0] > 0 and power["mean"] >= epsilon("open", kind)["bound"] * abs(e["trained"]["mean"])
    low = min(e["probes"]["power"]["gain"]["mean"] for e in entries)
    high = max(e["probes"]["power"]["gain"]["mean"] for e in entries)
    form = (lambda x: f"{x:.1f}") if kind == "consumer" else (
        lambda x: f"{x / 1e6:.2f}M") if kind == "firm" else (lambda x: f"{x:,.0f}")
    assert f"{form(low)}-{form(high)}" in RESULTS, kind


def test_every_seed_of_the_open_economy_keeps_every_firm_employed():
    """The text says every firm employs workers in every seed: no seed reports an idle firm."""
    idle = SUMMARY["economies"]["open"]["idle_firms_by_seed"]
    assert set(idle) == set(seeds("open")) and not any(idle.values())
    assert "every firm employs workers in every seed" in RESULTS


def test_the_closed_economys_failed_equilibrium_tests_are_quoted_as_summary_json_gives_them():
    """The text says the closed profile fails the tests: consumer gaps above 3% of the training gain, the
    government's above 1%, and one firm gaining more than its return by deviating alone."""
    consumer = [g / e["training_gain"]["mean"]
                for g, e in zip(type_gaps("closed", "consumer"), seed_entries("closed", "consumer"))]
    assert f"{100 * consumer[0]:.2f}% and {100 * consumer[1]:.2f}% of their training gain (bound 3%)" in RESULTS
    assert max(consumer) > epsilon("closed", "consumer")["bound"]
    government = seed_entries("closed", "government")[0]
    gap = type_gaps("closed", "government")[0]
    relative = gap / government["training_gain"]["mean"]
    assert f"{gap:.1f} in seed 0, {100 * relative:.0f}% of its training gain (bound 1%)" in RESULTS
    assert relative > epsilon("closed", "government")["bound"]
    firm = seed_entries("closed", "firm")[0]["individual"]
    ratio = firm["gain"]["mean"] / abs(firm["trained"]["mean"])
    assert f"one firm deviating alone gains {firm['gain']['mean']:,.0f} per episode in seed 0, {ratio:.1f} times its " \
           f"return of {firm['trained']['mean']:,.0f}" in RESULTS
    assert f"one firm deviating alone gains {ratio:.1f} times its return" in README
