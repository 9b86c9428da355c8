"""The report's markdown: rendered from the summary dictionary alone, by a template that computes nothing.

A small summary is written out by hand here, with its expected lines formatted by hand (thousands
separators, three significant figures, whole-percent rates); the template must print exactly those
lines, fail on a key the summary lacks, and print n/a where the summary holds null.
"""

from __future__ import annotations

import subprocess
import sys

import jinja2
import pytest
from jinja2 import nodes

from pipeline.analysis.report import markdown
from pipeline.analysis.report.epsilon import against_paper
from pipeline.analysis.report.summary import paper_reference, thresholds
from pipeline.analysis.report.welfare import per_step_welfare


def stat(mean: float, half: float) -> dict:
    return {"mean": mean, "ci95": [mean - half, mean + half], "seeds": 1}


def small_summary() -> dict:
    """One economy, one seed, the learned taxes and one fixed rate of 20%; episodes of 10 steps."""
    outcomes = {
        "learned": {"welfare_total": stat(3000.0, 10.0), "consumer_reward": stat(50.0, 2.0),
                    "firm_reward": stat(12000.0, 500.0)},
        "fixed20": {"welfare_total": stat(2500.0, 10.0), "consumer_reward": stat(40.0, 1.0)},
    }
    welfare = {
        "learned": stat(3000.0, 10.0), "fixed_tax": {"0.2": stat(2500.0, 10.0)},
        "best_fixed": {"rate": 0.2, **stat(2500.0, 10.0)}, "ratio_to_best_fixed": 1.2,
        "difference_to_best_fixed": 500.0, "ci_overlap_with_best_fixed": False,
        "best_paper_rate": {"rate": 0.2, **stat(2500.0, 10.0)}, "ratio_to_best_paper_rate": 1.2,
        "ci_overlap_with_best_paper_rate": False,
        "per_step": {"learned": 300.0, "best_fixed": 250.0, "best_paper_rate": 250.0},
    }
    epsilon = {"learned": {"consumer": {
        "relative": 0.025, "absolute": 0.5, "ci95": [0.1, 0.9], "training_gain": 20.0, "relative_vs_untrained": 0.01,
        "br_curve_end_change": -0.25, "below_paper_bound": True, "gain_ci_includes_zero": False}}}
    trend_row = {"values": [stat(40.0, 1.0)], "slope_per_unit_rate": None, "monotonic": "n/a"}
    correlation = {"r": -0.5, "r2": 0.25, "ci95": [-0.8, -0.1], "slope": -0.002, "n": 12}
    firms = {"workers": [stat(2.0, 0.5), stat(0.05, 0.01)], "domestic_share": [0.5, None]}
    response = {"wage_grid": [0, 10], "price_grid": [0, 100], "employer_probability": [[0.5, 0.9], [0.5, 0.51]],
                "demand_units": [[3.0, 1.0], [3.0, 2.5]]}
    open_economy = {
        "seeds": {"0": {"welfare": welfare}},
        "over_seeds": {"welfare": welfare, "outcomes": outcomes, "epsilon_by_branch": epsilon,
                       "learned_per_step": {"firm_reward": 1200.0, "consumer_reward": 5.0}},
        "per_firm": firms, "per_firm_by_seed": {"0": firms}, "idle_firms_by_seed": {"0": [1]},
        "consumer_response_by_seed": {"0": response}, "ignored_firms_by_seed": {"0": [1]},
        "plausibility": {
            "price_vs_consumption": {**correlation, "paper": {"sign": "negative", "r2": 0.73}},
            "wage_vs_hours": {**correlation, "r": None, "paper": {"sign": "positive", "r2": 0.19}},
            "fixed_tax_trend": {"rates": [0.2], "consumer_reward": trend_row, "firm_reward": trend_row,
                                "welfare_total": trend_row},
            "across_runs": {"price_vs_consumption": {**correlation, "n": 3}},
        },
    }
    return {
        "profile": "tiny", "primary_economy": "open", "economies_list": ["open"], "seeds": [0], "episode_length": 10,
        "economies": {"open": open_economy},
        "wall_time_s": {"dag": 146.3, "jobs_sum": 280.6, "jobs": 38},
        "setup": {
            "curriculum": [{"name": "consumers", "episodes": 4, "train": ["consumer"]},
                           {"name": "government", "episodes": 6, "train": ["consumer", "firm", "government"]}],
            "prefix_stages": ["consumers"],
            "evaluation": {"episodes": 2, "num_envs": 3},
            "best_response": {"episodes": 5, "algorithm": "pg", "eval_episodes": 2},
            "ablation_branch": None,
            "fixed_tax_by_branch": {"learned": None, "fixed20": 0.2},
            "outcome_names": ["welfare_total", "consumer_reward", "firm_reward"],
        },
        "paper_reference": {"fixed_rates": [0.2, 0.4], "epsilon_bound": {"consumer": 0.03},
                            "per_step": {"welfare_rl": "3000-4000", "welfare_best_fixed": "3160",
                                         "firm_reward": "about 115k-150k", "rl_above_best_fixed": "almost 15%"}},
        "thresholds": {"idle_firm_workers": 0.1, "ignored_wage_response": 0.05, "live_run_production": 1.0,
                       "training_window": {"fraction": 0.1, "min": 1, "cap": 50}},
        "figures": {"training_curves": "figures/training_curves.png"},
    }


EXPECTED = [
    "# Results: profile `tiny`",
    "Economies: open; seeds: 0. Curriculum: consumers (4 episodes: consumer), government (6 episodes: "
    "consumer+firm+government); the first 1 stage(s) are shared by every branch. Evaluation: 2 episodes x 3 "
    "economies per policy; best responses: 5 episodes (pg), evaluated over 2 episodes.",
    "| learned (RL, total welfare) | 3,000 | [2,990, 3,010] |",
    "| fixed 20% | 2,500 | [2,490, 2,510] |",
    "Best fixed tax: 20% (2,500). Learned - best fixed = 500.0, learned / best fixed = 1.20; the 95% intervals do "
    "not overlap.",
    "Per step (episode sums / 10, the unit of the paper's figures): learned 300.0, best fixed 250.0. Paper (open "
    "economy, per step): RL taxes 3000-4000, best fixed rate 3160 (of 20/40%), the best RL solution almost 15% "
    "above it.",
    "| consumer | 2.50% | < 3% | yes | 0.5 | [0.1, 0.9] | no | 20.00 | 1.00% | -0.25 |",
    "| Outcome | learned | 95% CI | fixed 20% |",
    "|---|---|---|---|",
    "| welfare total | 3,000 | [2,990, 3,010] | 2,500 |",
    "| firm reward | 12,000 | [11,500, 12,500] | n/a |",
    "Per step (the unit of the paper's figures), learned taxes: firm reward 1,200 per firm (paper, Fig. 4: about "
    "115k-150k), consumer reward 5.00 per consumer.",
    "| Firm | workers | domestic share |",
    "| 1 | 0.05 | n/a |",
    "| 0 | 2.00 (0.5) | 0.05 (n/a) | 1 |",
    "| Firm | employer at wage 0 | employer at wage 10 | units at price 0 | units at price 100 |",
    "|---|---|---|---|---|",
    "| 1 | 0.500 | 0.510 | 3.00 | 2.50 |",
    "Firms whose wage the consumers ignore: 1.",
    "| open | price vs consumption (units) | -0.5 | [-0.8, -0.1] | 0.25 | 12 | -0.002 | negative, r² 0.73 |",
    "| open | price vs consumption (units), across runs | -0.5 | [-0.8, -0.1] | 0.25 | 3 | -0.002 | negative, r² "
    "0.73 |",
    "| open | wage vs hours | n/a | [-0.8, -0.1] | 0.25 | 12 | -0.002 | positive, r² 0.19 |",
    "| open economy | fixed 20% | slope per unit rate | direction |",
    "| welfare total | 40.00 | n/a | n/a |",
    "DAG wall time 146.3 s (earliest benchmarked job start to latest end, 38 jobs); summed job wall time 280.6 s. "
    "If parts of the DAG were rerun later, the span includes the time between the runs.",
    "- `figures/training_curves.png`: rewards per type over the curriculum, stage boundaries marked.",
]


def test_a_known_summary_renders_to_the_lines_formatted_by_hand():
    lines = markdown.render_markdown(small_summary()).splitlines()
    missing = [line for line in EXPECTED if line not in lines]
    assert not missing, missing
    text = "\n".join(lines)
    # the paper's rate is the best fixed rate: no second comparison; one economy and no ablation: no such sections
    for absent in ("Against the paper's fixed rates only", "best of the paper's rates", "Consumer-only welfare",
                   "Curriculum vs no curriculum", "Economies side by side", "Per seed"):
        assert absent not in text, absent


def test_a_best_fixed_rate_outside_the_papers_list_adds_the_comparison_with_the_papers_rates():
    summary = small_summary()
    w = summary["economies"]["open"]["over_seeds"]["welfare"]
    w["best_fixed"] = {"rate": 0.0, **stat(3100.0, 10.0)}
    w["ratio_to_best_paper_rate"], w["ci_overlap_with_best_paper_rate"] = None, None
    w["per_step"] = {"learned": 300.0, "best_fixed": 310.0, "best_paper_rate": 250.0}
    lines = markdown.render_markdown(summary).splitlines()
    assert ("Against the paper's fixed rates only (20/40%): best 20% (2,500), learned / best = undefined (the "
            "reference welfare is not positive); the 95% intervals overlap: n/a.") in lines
    assert any(line.startswith("Per step (episode sums / 10, the unit of the paper's figures): learned 300.0, best "
                               "fixed 310.0, best of the paper's rates 250.0. Paper") for line in lines)


@pytest.mark.parametrize("path", [
    ("economies", "open", "over_seeds", "welfare", "difference_to_best_fixed"),
    ("economies", "open", "over_seeds", "welfare", "per_step"),
    ("economies", "open", "over_seeds", "learned_per_step", "consumer_reward"),
    ("economies", "open", "ignored_firms_by_seed"),
    ("thresholds", "idle_firm_workers"),
    ("setup", "evaluation", "num_envs"),
])
def test_a_number_the_summary_lacks_cannot_appear(path):
    summary = small_summary()
    parent = summary
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(jinja2.UndefinedError, match=path[-1]):
        markdown.render_markdown(summary)


def test_a_null_in_the_summary_reads_n_a():
    summary = small_summary()
    entry = summary["economies"]["open"]["over_seeds"]["epsilon_by_branch"]["learned"]["consumer"]
    entry.update(relative=None, below_paper_bound=None, ci95=[None, None], gain_ci_includes_zero=None)
    summary["wall_time_s"].update(dag=None, jobs_sum=None, jobs=0)
    lines = markdown.render_markdown(summary).splitlines()
    assert "| consumer | n/a | < 3% | n/a | 0.5 | [n/a, n/a] | n/a | 20.00 | 1.00% | -0.25 |" in lines
    assert any(line.startswith("DAG wall time n/a s (earliest benchmarked job start to latest end, 0 jobs); summed "
                               "job wall time n/a s.") for line in lines)


# Filters of Jinja that select or join without making a number; the formats are markdown.FILTERS.
SELECTING = {"join", "first", "last", "list", "select", "length"}
ARITHMETIC = (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow, nodes.Neg, nodes.Pos)


def computations(source: str) -> list[str]:
    """Arithmetic and filters outside the formats that a template's syntax tree holds."""
    tree = markdown.environment().parse(source)
    found = [f"line {n.lineno}: {type(n).__name__}" for n in tree.find_all(ARITHMETIC)]
    found += [f"line {n.lineno}: filter {n.name}" for n in tree.find_all(nodes.Filter)
              if n.name not in markdown.FILTERS and n.name not in SELECTING]
    return found


def test_the_template_computes_nothing():
    env = markdown.environment()
    source = env.loader.get_source(env, markdown.TEMPLATE)[0]
    assert "Per step" in source  # the shipped template, found as package data
    assert computations(source) == []


@pytest.mark.parametrize("planted", ["{{ x / 10 }}", "{{ -x }}", "{{ xs|sum }}", "{{ x|round }}", "{{ 100 * x }}"])
def test_a_computation_planted_in_a_template_is_caught(planted):
    assert len(computations(planted)) == 1


def test_the_hand_written_summary_has_the_shape_the_summary_code_writes():
    """The fixture's reference blocks carry the keys summary.py writes, so the tests above read real keys."""
    summary = small_summary()
    assert set(summary["thresholds"]) == set(thresholds())
    assert set(summary["paper_reference"]) == set(paper_reference())
    assert set(summary["paper_reference"]["per_step"]) == set(paper_reference()["per_step"])


def test_per_step_welfare_divides_the_episode_sums_by_the_steps():
    table = {"learned": {"mean": 3000.0}, "best_fixed": {"mean": 3100.0}, "best_paper_rate": {"mean": 2500.0}}
    assert per_step_welfare(table, episode_length=10) == {"learned": 300.0, "best_fixed": 310.0,
                                                          "best_paper_rate": 250.0}
    assert per_step_welfare({"learned": {"mean": 1.0}}, episode_length=10) == {}  # no fixed tax: nothing to compare


@pytest.mark.parametrize("relative, ci95, below, zero", [
    (0.02, [-0.1, 0.3], True, True),
    (0.05, [0.1, 0.3], False, False),
    (float("nan"), [0.1, float("nan")], None, None),
])
def test_a_gap_is_judged_against_the_papers_bound_for_its_type(relative, ci95, below, zero):
    judged = against_paper({"relative": relative, "ci95": ci95}, "consumer")  # the paper's bound: 3%
    assert judged["below_paper_bound"] is below and judged["gain_ci_includes_zero"] is zero


def test_the_command_line_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "pipeline.analysis.report", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--workflow-config" in result.stdout and "--logs" in result.stdout

