"""The report's numbers against values worked out by hand.

A result tree is written by hand (tests/report_support.py: three seeds of an open economy with an
income x corporate tax grid, one seed of a closed economy, every best-response probe). The statistics
(Student-t intervals over seeds, paired verdicts, the best fixed taxes, gaps, relative gaps, power
checks, individual deviations) are compared with values computed here from the numbers written into
the tree.
"""

from __future__ import annotations

import math

import pytest

from pipeline.analysis.report.epsilon import HAS_POWER, NO_POWER, over_seed_entry
from pipeline.analysis.report.stats import HIGHER, INDISTINGUISHABLE, LOWER, ONE_SEED, over_seeds, paired

from report_support import (  # noqa: F401 (fixture)
    HALF_SD1, HAND_WORKFLOW, T975_2, hand_welfare, report, stat, write_tree,
)


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


def test_a_capped_government_also_meets_the_best_fixed_tax_inside_its_cap(tmp_path):
    from pipeline.analysis.report import Results
    from pipeline.analysis.report.welfare import outcomes, welfare_comparisons
    from pipeline.orchestration.plan import WorkflowPlan

    plan = WorkflowPlan({**HAND_WORKFLOW, "consumer_welfare_max_corporate_tax": 0.3})
    results = Results(write_tree(tmp_path, plan, welfare=hand_welfare), plan)
    w = welfare_comparisons(results, "open", {b: outcomes(results, "open", b) for b in plan.evaluated_branches("open")})
    # consumer-only welfare at seed s: consumer_welfare 60 + s, fixed00c40 45 + s, every other branch 40 + s.
    # The best fixed tax overall is fixed00c40, whose 40% corporate rate lies above the 30% cap; inside the cap
    # only fixed20 (20% / 20%) is left, 20 below the capped government at every seed.
    capped = w["consumer_welfare"]
    assert capped["every_fixed"]["best"]["branch"] == "fixed00c40"
    assert capped["within_cap"]["max_corporate_tax"] == 0.3 and capped["within_cap"]["candidates"] == ["fixed20"]
    assert capped["within_cap"]["best"]["branch"] == "fixed20"
    assert capped["within_cap"]["difference"]["ci95"] == pytest.approx([20.0, 20.0])
    assert capped["within_cap"]["verdict"] == HIGHER
    assert w["learned"]["within_cap"] is None  # the total-welfare government sets every rate


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


def test_one_agent_alone_is_its_gain_relative_to_its_own_reward(report):
    seeds = report["summary"]["economies"]["open"]["epsilon"]["learned"]["consumer"]["per_seed"]
    got = [(seeds[s]["individual"]["agent"], seeds[s]["individual"]["learner"], seeds[s]["individual"]["relative"])
           for s in "012"]
    # agent of seed s among 4 consumers: floor(frac(0.5 + 0.618 s) x 4) = 2, 0, 2 for seeds 0, 1, 2
    assert got == [(2, "pg", pytest.approx(2.0 / 200)), (0, "pg", pytest.approx(1.0 / 200)),
                   (2, "pg", pytest.approx(3.0 / 200))]
    over = report["summary"]["economies"]["open"]["epsilon"]["learned"]["consumer"]["over_seeds"]["individual"]
    assert over["gain"]["mean"] == pytest.approx(2.0) and over["gain"]["ci95"] == pytest.approx(
        [2.0 - HALF_SD1, 2.0 + HALF_SD1])
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

    plan = WorkflowPlan(HAND_WORKFLOW)
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
