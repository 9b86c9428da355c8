"""The report against numbers worked out by hand.

A result tree is written by hand (tests/report_support.py): three seeds of an open economy with an
income x corporate tax grid, one seed of a closed economy, every best-response probe. The statistics
(Student-t intervals over seeds, paired verdicts, gaps, relative gaps, power checks, the best fixed
tax) are compared with values computed here from the numbers written into the tree; the markdown
must print those numbers, formatted by hand, and nothing the summary lacks; the figures are checked
on the drawn artists (one panel per economy, bars on their own scale, the intervals drawn).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import jinja2
import pytest
import yaml
from jinja2 import nodes
from matplotlib.container import BarContainer

from pipeline.analysis.report import FIGURES, markdown
from pipeline.analysis.report.cli import make_report
from pipeline.analysis.report.epsilon import HAS_POWER, NO_POWER, over_seed_entry
from pipeline.analysis.report.stats import HIGHER, INDISTINGUISHABLE, LOWER, ONE_SEED, over_seeds, paired

from conftest import ROOT
from report_support import EXPERIMENT, stat, write_tree

T975_2 = 4.303  # Student t(0.975) with 2 degrees of freedom
HALF_SD1 = T975_2 / math.sqrt(3)  # half-width of the t-interval of three values with standard deviation 1

WORKFLOW = {
    "profile": "hand", "seeds": [0, 1, 2], "economy_seeds": {"closed": [3]},
    "economies": {"open": {"open_economy": True}, "closed": {"open_economy": False}},
    "prefix_stages": 1, "fixed_taxes": [0.2, 0.4],
    "tax_grid": {"income": [0.0], "corporate": [0.4], "economies": ["open"]},
    "experiment": EXPERIMENT, "best_response_power": True, "best_response_individual": ["consumer"],
}

# Total welfare per branch: open = base + seed, except fixed20, which wins seed 0 alone; the closed economy's
# numbers are a hundredth of the open one's, and there the ablation beats the curriculum.
OPEN_TOTAL = {"learned": 130.0, "consumer_welfare": 90.0, "fixed40": 120.0, "fixed00c40": 150.0, "nocurriculum": 125.0}
FIXED20_OPEN = (200.0, 50.0, 50.0)
CLOSED_TOTAL = {"learned": 2.0, "consumer_welfare": 1.0, "fixed20": 3.0, "fixed40": 0.5, "nocurriculum": 5.0}


def welfare(economy: str, seed: int, branch: str) -> tuple[float, float]:
    consumer = {"consumer_welfare": 60.0, "fixed00c40": 45.0}.get(branch, 40.0) + seed
    if economy == "closed":
        return CLOSED_TOTAL[branch], consumer / 100
    total = FIXED20_OPEN[seed] if branch == "fixed20" else OPEN_TOTAL[branch] + seed
    return total, consumer


def rates(economy: str, seed: int, branch: str) -> tuple[float, float]:
    return (0.1 * seed, 0.3) if branch == "learned" else (0.05, 0.5)


# Consumer probes in the open economy, per seed: the learners' gains, the power check, the deviating agent, and
# the training gain vs untrained (seed 1: its interval includes 0; seed 2: negative).
CONSUMER = {
    0: {"pg": 1.0, "ppo": 3.0, "power": stat(7.0, 0.5), "agent_pg": 2.0, "agent_ppo": 4.0,
        "training": stat(100.0, 10.0)},
    1: {"pg": 5.0, "ppo": 2.0, "power": stat(5.0, 0.5), "agent_pg": 1.0, "agent_ppo": 0.5, "training": stat(5.0, 6.0)},
    2: {"pg": 2.0, "ppo": 2.5, "power": stat(7.0, 7.5), "agent_pg": 3.0, "agent_ppo": 1.0,
        "training": stat(-3.0, 1.0)},
}


def probe_of(economy: str, seed: int, group: str, probe: str) -> dict:
    if economy == "closed":  # tiny gains, and a bound (3-10% of 1,000) far above them
        gain = 0.01 * (1 + len(probe))
        return {"gain": stat(gain, 0.1 * gain), "trained": 1000.0}
    if group == "consumer":
        return {"gain": CONSUMER[seed][probe], "training": CONSUMER[seed]["training"]}
    return {"gain": 1000.0 + 10 * seed}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the hand-written tree; every figure it drew is kept (figure objects, by name)."""
    import matplotlib.figure

    from pipeline.orchestration.plan import WorkflowPlan

    root = tmp_path_factory.mktemp("hand") / "results"
    config = root.parent / "workflow.yaml"
    config.write_text(yaml.safe_dump(WORKFLOW, sort_keys=False))
    write_tree(root, WorkflowPlan(WORKFLOW), welfare, probe_of, rates, collapsed={("open", 1, "fixed00c40")})
    (root / "machine.json").write_text(json.dumps({"cpu_model": "Hand CPU", "native_bf16": True,
                                                   "train_throughput_s_per_iteration": 0.25, "threads": 2}))
    drawn = {}
    save = matplotlib.figure.Figure.savefig

    def keep(fig, path, *args, **kwargs):
        drawn[path.stem] = fig
        return save(fig, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matplotlib.figure.Figure, "savefig", keep)
        summary = make_report(root, config, root.parent / "logs", track=False)
    return {"root": root, "summary": summary, "markdown": (root / "summary.md").read_text(), "figures": drawn}


# ---------------------------------------------------------------------------------------- one sample
def test_one_welfare_sample_is_the_hand_sum_of_one_economys_episode():
    """economy_samples on a rollout of 2 economies x 3 steps x 2 consumers x 2 firms written by hand."""
    import torch
    from tensordict import TensorDict

    from envs.rbc.config import RBCConfig
    from pipeline.learning.metrics import economy_samples

    E, T, C, F = 2, 3, 2, 2
    consumer = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[-1.0, -1.0]] * 3])  # returns 9, 12 | -3, -3
    firm = torch.tensor([[[100.0, 0.0], [200.0, 0.0], [300.0, 1000.0]],  # returns 600, 1000
                         [[10.0, -20.0], [10.0, 0.0], [10.0, 0.0]]])  # returns 30, -20
    zeros = {"consumer": torch.zeros(E, T, C), "firm": torch.zeros(E, T, F), "government": torch.zeros(E, T, 1)}
    nxt = {
        "consumer": {"reward": consumer.unsqueeze(-1), "hours": zeros["consumer"], "budget": zeros["consumer"],
                     "consumption": torch.zeros(E, T, C, F), "employer": torch.zeros(E, T, C, dtype=torch.long)},
        "firm": {"reward": firm.unsqueeze(-1), **{k: zeros["firm"] for k in ("sales", "exports", "price", "wage",
                                                                              "production", "budget")}},
        "government": {"reward": torch.tensor([[7.0, 8.0, 9.0], [0.0, 0.0, 1.0]]).unsqueeze(-1),
                       "income_tax_rate": torch.tensor([[0.9, 0.2, 0.4], [0.0, 0.5, 0.5]]).unsqueeze(-1),
                       "corporate_tax_rate": zeros["government"]},
    }
    data = TensorDict({"consumer": {"action": torch.zeros(E, T, C, F + 1, dtype=torch.long)}, "next": nxt},
                      batch_size=[E, T])
    got = economy_samples(data, RBCConfig(n_consumers=C, n_firms=F, firm_welfare_weight=0.25))
    assert got["welfare/consumer_only"].tolist() == [9 + 12, -3 - 3]
    assert got["welfare/total"].tolist() == [21 + 0.25 * (600 + 1000), -6 + 0.25 * (30 - 20)]
    assert got["reward/consumer"].tolist() == [10.5, -3.0] and got["reward/firm"].tolist() == [800.0, 5.0]
    assert got["reward/government"].tolist() == [24.0, 1.0]
    # rates over the steps the government chose (step 0 runs at the initial state's rate)
    assert got["economy/income_tax_rate"].tolist() == pytest.approx([0.3, 0.5])


# ---------------------------------------------------------------------------------------- statistics
def test_the_over_seed_interval_is_the_student_t_interval_computed_by_hand():
    got = over_seeds([1.0, 2.0, 4.0])
    mean = 7 / 3
    sd = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2)
    half = T975_2 * sd / math.sqrt(3)
    assert got["mean"] == pytest.approx(mean) and got["sd"] == pytest.approx(sd) and got["seeds"] == 3
    assert got["ci95"] == pytest.approx([mean - half, mean + half])
    assert over_seeds([1.0, float("nan"), 2.0, 4.0])["ci95"] == pytest.approx(got["ci95"])  # undefined: left out
    one = over_seeds([5.0])
    assert one["mean"] == 5.0 and one["seeds"] == 1 and math.isnan(one["sd"]) and all(map(math.isnan, one["ci95"]))


@pytest.mark.parametrize("shift, expected", [(2.5, HIGHER), (2.45, INDISTINGUISHABLE), (-2.45, INDISTINGUISHABLE),
                                             (-2.5, LOWER)])
def test_a_paired_verdict_needs_the_interval_of_the_mean_difference_to_exclude_zero(shift, expected):
    # differences shift - 1, shift, shift + 1: mean shift, sd 1, so the interval excludes 0 once |shift| > 2.484
    levels = {"0": 100.0, "1": 400.0, "2": 40.0}  # far apart, so unpaired intervals would overlap whatever the shift
    baseline = dict(levels)
    policy = {s: levels[s] + shift + d for s, d in zip(levels, (-1.0, 0.0, 1.0))}
    got = paired(policy, baseline)
    assert got["verdict"] == expected
    assert got["difference"]["mean"] == pytest.approx(shift)
    assert got["difference"]["ci95"] == pytest.approx([shift - HALF_SD1, shift + HALF_SD1])
    assert got["per_seed"]["1"]["ratio"] == pytest.approx((400.0 + shift) / 400.0)


def test_one_seed_gives_no_verdict_and_a_ratio_needs_a_positive_baseline():
    got = paired({"0": 5.0}, {"0": -2.0})
    assert got["verdict"] == ONE_SEED and got["per_seed"]["0"]["difference"] == 7.0
    assert math.isnan(got["per_seed"]["0"]["ratio"])


# ---------------------------------------------------------------------------------------- welfare and the tax grid
def test_the_fair_and_the_equal_rate_baselines_are_the_best_over_seed_means(report):
    w = report["summary"]["economies"]["open"]["welfare"]["learned"]
    # fixed20 wins seed 0 (200) but its mean (100) is below fixed40's (121); the grid's fixed00c40 (151) is best
    assert w["equal_rate"]["best"]["branch"] == "fixed40" and w["equal_rate"]["candidates"] == ["fixed20", "fixed40"]
    assert w["every_fixed"]["best"]["branch"] == "fixed00c40"
    assert (w["every_fixed"]["best"]["income"], w["every_fixed"]["best"]["corporate"]) == (0.0, 0.4)
    # learned 130 + s against 120 + s: +10 at every seed; against 150 + s: -20 at every seed
    assert w["equal_rate"]["difference"]["mean"] == pytest.approx(10.0) and w["equal_rate"]["verdict"] == HIGHER
    assert w["every_fixed"]["difference"]["ci95"] == pytest.approx([-20.0, -20.0])
    assert w["every_fixed"]["verdict"] == LOWER
    assert w["every_fixed"]["per_seed"]["2"] == pytest.approx(
        {"policy": 132.0, "baseline": 152.0, "difference": -20.0, "ratio": 132.0 / 152.0})
    assert w["policy"]["over_seeds"]["ci95"] == pytest.approx([131.0 - HALF_SD1, 131.0 + HALF_SD1])
    assert w["policy"]["per_seed"]["1"] == {"mean": 131.0, "ci95": [130.0, 132.0], "n": 4}
    consumer = report["summary"]["economies"]["open"]["welfare"]["consumer_welfare"]
    assert consumer["metric"] == "welfare_consumer_only" and consumer["every_fixed"]["best"]["branch"] == "fixed00c40"
    assert consumer["every_fixed"]["difference"]["mean"] == pytest.approx(15.0)


def test_the_tax_grid_table_has_every_point_of_the_economy_with_its_collapsed_seeds(report):
    open_grid = report["summary"]["economies"]["open"]["tax_grid"]
    rows = [(p["income"], p["corporate"], p["equal_rate_list"], p["collapsed_seeds"]) for p in open_grid["points"]]
    assert rows == [(0.0, 0.4, False, 1), (0.2, 0.2, True, 0), (0.4, 0.4, True, 0)]
    assert open_grid["points"][1]["welfare_total"]["mean"] == pytest.approx(100.0)
    assert open_grid["best"] == {"welfare_total": "fixed00c40", "welfare_consumer_only": "fixed00c40"}
    closed_grid = report["summary"]["economies"]["closed"]["tax_grid"]
    assert [p["branch"] for p in closed_grid["points"]] == ["fixed20", "fixed40"]  # the grid ran in the open one only
    assert closed_grid["best"]["welfare_total"] == "fixed20"


def test_the_learned_tax_rates_are_given_per_seed_and_over_seeds(report):
    learned = report["summary"]["economies"]["open"]["learned_tax_rates"]["learned"]
    assert [learned["income"]["per_seed"][s]["mean"] for s in "012"] == pytest.approx([0.0, 0.1, 0.2])
    assert learned["income"]["over_seeds"]["ci95"] == pytest.approx([0.1 - 0.1 * HALF_SD1, 0.1 + 0.1 * HALF_SD1])
    assert learned["corporate"]["over_seeds"]["mean"] == pytest.approx(0.3)


def test_the_ablation_is_paired_with_the_curriculum_and_the_text_says_which_is_higher(report):
    closed = report["summary"]["economies"]["closed"]["ablation"]
    assert closed["welfare_total"]["verdict"] == ONE_SEED and closed["higher_by_seed"] == {"3": "no curriculum"}
    opened = report["summary"]["economies"]["open"]["ablation"]
    assert opened["welfare_total"]["difference"]["mean"] == pytest.approx(-5.0)  # 125 + s against 130 + s
    assert opened["welfare_total"]["verdict"] == LOWER
    text = report["markdown"]
    assert ("Total welfare is higher with the curriculum than without it: over 3 seeds the difference (no "
            "curriculum - curriculum) is -5.00, 95% CI [-5.00, -5.00].") in text
    assert "Higher total welfare per seed: seed 3: no curriculum." in text


# ---------------------------------------------------------------------------------------- best responses
def test_the_gap_is_the_largest_learner_gain_and_a_relative_gap_needs_a_significant_training_gain(report):
    consumer = report["summary"]["economies"]["open"]["epsilon"]["learned"]["consumer"]
    seeds = consumer["per_seed"]
    assert [(seeds[s]["gap"]["mean"], seeds[s]["gap_learner"]) for s in "012"] == [(3.0, "ppo"), (5.0, "pg"),
                                                                                     (2.5, "ppo")]
    assert seeds["0"]["relative"] == pytest.approx(3.0 / 100.0) and seeds["0"]["relative_undefined"] is None
    assert seeds["1"]["relative"] is None and "includes 0" in seeds["1"]["relative_undefined"]
    assert seeds["2"]["relative"] is None and "not positive" in seeds["2"]["relative_undefined"]
    over = consumer["over_seeds"]
    sd = math.sqrt(((3.0 - 3.5) ** 2 + (5.0 - 3.5) ** 2 + (2.5 - 3.5) ** 2) / 2)
    assert over["gap"]["ci95"] == pytest.approx([3.5 - T975_2 * sd / math.sqrt(3), 3.5 + T975_2 * sd / math.sqrt(3)])
    assert over["relative"]["mean"] == pytest.approx(0.03) and over["relative"]["seeds"] == 1
    assert over["worst_seed"] == "0" and over["below_bound"] is None  # two seeds undefined: could be worse
    assert over["worst_seed_absolute"] == "1"


def test_the_power_check_needs_a_significant_gain_of_the_size_of_the_bound(report):
    seeds = report["summary"]["economies"]["open"]["epsilon"]["learned"]["consumer"]["per_seed"]
    # bound 3% x |trained reward 200| = 6: seed 0 finds 7 [6.5, 7.5]; seed 1 only 5; seed 2 7 but [-0.5, 14.5]
    assert [seeds[s]["power"]["required"] for s in "012"] == pytest.approx([6.0] * 3)
    assert [seeds[s]["power"]["verdict"] for s in "012"] == [HAS_POWER, NO_POWER, NO_POWER]
    over = report["summary"]["economies"]["open"]["epsilon"]["learned"]["consumer"]["over_seeds"]
    assert over["seeds_with_power"] == 1 and over["power_checked_seeds"] == 3


def test_one_agent_alone_is_the_largest_individual_gain_relative_to_its_own_reward(report):
    seeds = report["summary"]["economies"]["open"]["epsilon"]["learned"]["consumer"]["per_seed"]
    got = [(seeds[s]["individual"]["agent"], seeds[s]["individual"]["learner"], seeds[s]["individual"]["relative"])
           for s in "012"]
    assert got == [(0, "ppo", pytest.approx(4.0 / 200)), (1, "pg", pytest.approx(1.0 / 200)),
                   (2, "pg", pytest.approx(3.0 / 200))]  # agent = seed mod 4 consumers
    over = report["summary"]["economies"]["open"]["epsilon"]["learned"]["consumer"]["over_seeds"]["individual"]
    assert over["gain"]["mean"] == pytest.approx(8.0 / 3)
    assert report["summary"]["economies"]["open"]["epsilon"]["learned"]["firm"]["per_seed"]["0"]["individual"] is None


@pytest.mark.parametrize("relatives, below", [([0.01, 0.02], True), ([0.01, 0.04], False), ([0.01, None], None)])
def test_the_worst_seed_is_judged_against_the_bound_only_when_every_seed_is_defined(relatives, below):
    per_seed = {str(i): {"relative": float("nan") if r is None else r, "gap": stat(1.0), "power": None,
                         "individual": None} for i, r in enumerate(relatives)}
    assert over_seed_entry(per_seed, "consumer")["below_bound"] is below  # the consumer's bound: 3%


# ---------------------------------------------------------------------------------------- training logs
def test_a_collapsed_branch_has_short_logs_and_an_incomplete_one_is_refused(report, tmp_path):
    import numpy as np

    from pipeline.analysis.report import Results
    from pipeline.orchestration.plan import WorkflowPlan

    plan = WorkflowPlan(WORKFLOW)
    results = Results(report["root"], plan)
    # open, seed 1, fixed00c40 collapsed 2 episodes into its own stage (episodes 4-7): 4 and 5 trained, 6 and 7 not
    log = results.training_log("open", 1, "fixed00c40")
    assert log["episode"].tolist() == list(range(8))
    assert np.isfinite(log["reward/consumer"][:6]).all() and np.isnan(log["reward/consumer"][6:]).all()
    assert np.isfinite(results.training_log("open", 0, "fixed00c40")["reward/consumer"]).all()
    write_tree(tmp_path, plan)
    path = tmp_path / "open" / "seed0" / "learned" / "government.metrics.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:3]) + "\n")  # two of its four episodes
    with pytest.raises(ValueError, match="incomplete"):
        Results(tmp_path, plan).training_log("open", 0, "learned")


# ---------------------------------------------------------------------------------------- the markdown
def test_the_markdown_prints_the_summarys_numbers_formatted_by_hand(report):
    lines = report["markdown"].splitlines()
    expected = [
        "Economies and seeds: open (seeds 0, 1, 2), closed (seeds 3). Curriculum: consumers (4 episodes: consumer), "
        "government (4 episodes: consumer+firm+government); the first 1 stage(s) are shared by every branch. "
        "Evaluation: 2 episodes x 2 economies per policy and seed. Best responses: 4 episodes per probe, evaluated "
        "over 2 episodes; probes per type: consumer: pg, ppo, power, agent_pg, agent_ppo; firm: pg, ppo, power; "
        "government: pg, ppo, power.",
        "The closed economy has one seed (3): no statement over seeds is possible there; its numbers are that "
        "seed's, and its intervals are evaluation noise only.",
        "| learned | 131.0 | [128.5, 133.5] | 1.00 | 3 | 130.0 [129.0, 131.0] | 131.0 [130.0, 132.0] | "
        "132.0 [131.0, 133.0] |",
        "| fixed 0% income / 40% corporate | 151.0 | [148.5, 153.5] | 1.00 | 3 | 150.0 [149.0, 151.0] | "
        "151.0 [150.0, 152.0] | 152.0 [151.0, 153.0] |",
        "- Against every fixed tax of this economy, the income x corporate grid included (the fair comparison), best "
        "fixed 0% income / 40% corporate (151.0 over seeds): difference over seeds -20.00, 95% CI [-20.00, -20.00] "
        "(3 seed(s)): **lower**; ratio of the means 0.868.",
        "| 0% | 40% | no | 151.0 | [148.5, 153.5] | 46.00 | [43.52, 48.48] | 1 of 3 |",
        "| learned | 10.00% | [-14.84%, 34.84%] | 30.00% | [30.00%, 30.00%] | 0.00% / 30.00% | 10.00% / 30.00% | "
        "20.00% / 30.00% |",
        "| consumer | 0 | 1.00 [0.5, 1.50] | 3.00 [2.50, 3.50] | 3.00 (ppo) | 100.0 [90.00, 110.0] | 3.00% | "
        "7.00 [6.50, 7.50] | 6.00 | has power | 0 | 4.00 [3.50, 4.50] | 2.00% |",
        "- consumer, seed 1: relative gap undefined: the training gain's 95% interval includes 0.",
        "Machine: Hand CPU; native bf16: yes; training throughput 0.25 s per iteration with 2 thread(s).",
    ]
    missing = [line for line in expected if line not in lines]
    assert not missing, missing
    for key, text in report["summary"]["definitions"].items():
        assert f"- `{key}`: {text}" in lines


def test_without_a_machine_record_the_summary_holds_null_and_the_text_says_so(report):
    summary = json.loads((report["root"] / "summary.json").read_text())
    assert summary["machine"] == {"cpu_model": "Hand CPU", "native_bf16": True,
                                  "train_throughput_s_per_iteration": 0.25, "threads": 2}
    summary["machine"] = None
    text = markdown.render_markdown(summary)
    assert "Machine: no record (`machine.json`) was written beside these results." in text
    assert re.search(r"DAG wall time n/a s \(earliest benchmarked job start to latest end, 0 jobs\)", text)


@pytest.mark.parametrize("path", [
    ("economies", "open", "welfare", "learned", "every_fixed", "verdict"),
    ("economies", "open", "epsilon", "learned", "consumer", "over_seeds", "worst_relative"),
    ("economies", "open", "tax_grid", "points", 0, "collapsed_seeds"),
    ("economies", "closed", "ablation", "higher_by_seed"),
    ("definitions",),
    ("wall_time_s", "jobs"),
])
def test_a_number_the_summary_lacks_cannot_appear(report, path):
    summary = json.loads((report["root"] / "summary.json").read_text())
    parent = summary
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(jinja2.UndefinedError, match=str(path[-1])):
        markdown.render_markdown(summary)


def test_a_null_in_the_summary_reads_n_a(report):
    summary = json.loads((report["root"] / "summary.json").read_text())
    summary["economies"]["open"]["epsilon"]["learned"]["consumer"]["per_seed"]["0"]["relative"] = None
    lines = markdown.render_markdown(summary).splitlines()
    assert any(line.startswith("| consumer | 0 | 1.00 [0.5, 1.50] | 3.00 [2.50, 3.50] | 3.00 (ppo) | 100.0 [90.00, "
                               "110.0] | n/a |") for line in lines)


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
    assert "Best-response gaps" in source  # the shipped template, found as package data
    assert computations(source) == []


@pytest.mark.parametrize("planted", ["{{ x / 10 }}", "{{ -x }}", "{{ xs|sum }}", "{{ x|round }}", "{{ 100 * x }}"])
def test_a_computation_planted_in_a_template_is_caught(planted):
    assert len(computations(planted)) == 1


# ---------------------------------------------------------------------------------------- the figures
def test_best_response_panels_are_per_economy_on_their_own_scale_with_intervals_over_seeds(report):
    fig = report["figures"]["best_response"]
    axes = fig.axes
    assert len(axes) == 2 * 3  # (open, closed) x (consumer, firm, government)
    for ax in axes:
        heights = [abs(p.get_height()) for p in ax.patches]
        lo, hi = ax.get_ylim()
        assert ax.get_ylabel() and max(heights) > 0.25 * (hi - lo), ax.get_title()  # the bars fill their panel
    consumer_open = next(ax for ax in axes if ax.get_title().startswith("open (learned): consumer"))
    pg = next(c for c in consumer_open.containers if isinstance(c, BarContainer))  # pg: gains 1, 5, 2
    assert pg.patches[0].get_height() == pytest.approx(8.0 / 3)
    segment = pg.errorbar.lines[2][0].get_segments()[0]
    sd = math.sqrt(((1 - 8 / 3) ** 2 + (5 - 8 / 3) ** 2 + (2 - 8 / 3) ** 2) / 2)
    assert [segment[0][1], segment[1][1]] == pytest.approx([8 / 3 - T975_2 * sd / math.sqrt(3),
                                                            8 / 3 + T975_2 * sd / math.sqrt(3)])
    hatches = {p.get_hatch() for p in consumer_open.patches}
    assert hatches == {None, "//", ".."}  # learners, the power check and one agent alone look different


def test_training_curves_tell_every_branch_apart(report):
    for ax in report["figures"]["training_curves"].axes:
        lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
        looks = [(str(line.get_color()), str(line.get_linestyle())) for line in lines
                 if line.get_label() != "shared prefix"]
        assert len(set(looks)) == len(looks), ax.get_title()
    open_labels = {line.get_label() for line in report["figures"]["training_curves"].axes[0].get_lines()}
    assert {"learned taxes", "fixed 20%", "fixed 0% income / 40% corporate", "no curriculum"} <= open_labels


def test_the_tax_grid_figure_shows_the_over_seed_welfare_and_the_learned_rates(report):
    axes = [ax for ax in report["figures"]["tax_grid"].axes if ax.images]
    assert len(axes) == 2 * 2  # (open, closed) x (total, consumer-only)
    grid = axes[0].images[0].get_array()  # open, total welfare: corporate (rows) x income (columns)
    assert grid.shape == (2, 3)  # incomes 0/20/40%, corporate 20/40%
    assert grid[1, 0] == pytest.approx(151.0) and grid[0, 1] == pytest.approx(100.0) and grid.mask[0, 0]
    star = next(line for line in axes[0].get_lines() if line.get_marker() == "*")
    assert star.get_xdata()[0] == pytest.approx(0.5)  # learned income 10%: halfway between the 0% and 20% columns
    assert star.get_ydata()[0] == pytest.approx(0.5)  # corporate 30%: halfway between the 20% and 40% rows


def test_welfare_against_the_equal_rates_has_a_row_per_economy_and_t_intervals(report):
    axes = report["figures"]["welfare_vs_tax"].axes
    assert len(axes) == 2 * 4
    total_open = axes[0]
    assert total_open.get_title().startswith("open: total welfare (3 seeds)")
    fixed = total_open.containers[0]  # the equal rates 20% and 40%: means 100 and 121
    assert list(fixed.lines[0].get_ydata()) == pytest.approx([100.0, 121.0])
    segment = fixed.lines[2][0].get_segments()[1]
    assert [segment[0][1], segment[1][1]] == pytest.approx([121.0 - HALF_SD1, 121.0 + HALF_SD1])


def test_every_figure_is_a_workflow_output_with_a_caption():
    smk = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    listed = re.search(r"^FIGURES = (\[.*?\])", smk, re.M | re.S).group(1)
    assert tuple(yaml.safe_load(listed)) == FIGURES
    for name in FIGURES:
        assert (ROOT / "workflow" / "report" / f"{name}.rst").read_text().strip(), name


def test_the_command_line_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "pipeline.analysis.report", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--workflow-config" in result.stdout and "--logs" in result.stdout
