"""benchmarks/budget_check.py on hand-written evaluations whose answers are worked out by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import budget_check  # noqa: E402

T975_2 = 4.302652729911275  # Student's t, 2 degrees of freedom, 97.5% (tables)


def write(root: Path, seed: int, branch: str, welfare: float, consumers: float = 0.0,
          collapsed_at: int | None = None) -> None:
    path = root / "open" / f"seed{seed}" / branch / "evaluation.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"collapsed_at": collapsed_at, "metrics": {
        "welfare/total": {"mean": welfare}, "welfare/consumer_only": {"mean": consumers}}}))


@pytest.fixture()
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """Default: learned 1000 + 10*seed, fixed20 600, fixed00 950 (seeds 0-2).
    Cheap: learned 1000 + 10*seed + (0, 2, -2): the same; fixed20 600 - 100: lower in every seed;
    fixed00 collapses in seed 1 (cheap only) and is otherwise the default's; seed 2 of learned is missing."""
    default, cheap = tmp_path / "default", tmp_path / "cheap"
    for seed in range(3):
        write(default, seed, "learned", 1000.0 + 10 * seed)
        write(default, seed, "fixed20", 600.0)
        write(default, seed, "fixed00", 950.0 + seed)
        write(cheap, seed, "learned", 1000.0 + 10 * seed + (0.0, 2.0, -2.0)[seed])
        write(cheap, seed, "fixed20", 500.0)
        write(cheap, seed, "fixed00", 0.0 if seed == 1 else 950.0 + seed, collapsed_at=1700 if seed == 1 else None)
    write(default, 3, "learned", 1030.0)  # a seed the cheap profile did not run: left out of every pair
    return cheap, default


def rows(trees, kind):
    cheap, default = (budget_check.evaluations(root, "open") for root in trees)
    return {row.get("branch", row.get("baseline")): row for row in kind(cheap, default, "welfare/total")}


def test_a_branch_is_the_same_where_the_paired_difference_holds_zero(trees):
    branches = rows(trees, budget_check.branch_rows)
    learned = branches["learned"]  # differences 0, 2, -2: mean 0, sd 2
    assert learned["seeds"] == [0, 1, 2]
    assert learned["difference"]["mean"] == pytest.approx(0.0)
    assert learned["difference"]["ci95"] == pytest.approx([-T975_2 * 2 / 3**0.5, T975_2 * 2 / 3**0.5])
    assert learned["same"]
    fixed20 = branches["fixed20"]  # -100 in every seed: an interval of width zero at -100
    assert fixed20["difference"]["ci95"] == pytest.approx([-100.0, -100.0]) and not fixed20["same"]


def test_a_branch_that_collapses_in_one_profile_only_is_not_the_same(trees):
    fixed00 = rows(trees, budget_check.branch_rows)["fixed00"]
    assert fixed00["collapsed"] == {"cheap": [1], "default": []}
    assert not fixed00["same"]


def test_a_comparison_is_the_same_where_the_cheap_mean_lies_in_the_defaults_interval(trees):
    comparisons = rows(trees, budget_check.comparison_rows)
    # default learned - fixed20: 400, 410, 420 (mean 410, half-width 4.303 * 10 / sqrt 3 = 24.8);
    # cheap: 500, 512, 518 (mean 510): outside
    fixed20 = comparisons["fixed20"]
    assert fixed20["default"]["mean"] == pytest.approx(410.0)
    assert fixed20["cheap"]["mean"] == pytest.approx(510.0)
    assert not fixed20["same"]
    # default learned - fixed00: 50, 59, 68 (mean 59, half-width 4.303 * 9 / sqrt 3 = 22.4);
    # cheap: 50, 1012, 66 (mean 376): outside, the collapse shows here too
    assert comparisons["fixed00"]["cheap"]["mean"] == pytest.approx((50 + 1012 + 66) / 3)
    assert not comparisons["fixed00"]["same"]


def test_the_printout_counts_the_checks(trees, capsys):
    cheap, default = trees
    assert budget_check.main(["--root", str(cheap), "--against", str(default)]) == 0
    out = capsys.readouterr().out
    # per metric: three branches and two comparisons; consumer welfare is 0 everywhere except where equal
    assert out.count("DIFFERS") == 4 + 1  # total: fixed00, fixed20 and both comparisons; consumers: fixed00's collapse
    assert out.strip().endswith("5 of 10 checks the same")


def test_trees_without_a_common_branch_are_an_error(tmp_path, capsys):
    write(tmp_path / "a", 0, "learned", 1.0)
    write(tmp_path / "b", 0, "fixed20", 1.0)
    assert budget_check.main(["--root", str(tmp_path / "a"), "--against", str(tmp_path / "b")]) == 2
    assert "no branch evaluated both" in capsys.readouterr().err


def test_saved_means_read_back_as_the_tree_they_came_from(trees, tmp_path, capsys):
    cheap, default = trees
    saved = tmp_path / "study" / "cheap.json"
    assert budget_check.main(["--root", str(cheap), "--against", str(default), "--save", str(saved)]) == 0
    from_tree = capsys.readouterr().out
    assert budget_check.evaluations(saved, "open") == budget_check.evaluations(cheap, "open")
    assert budget_check.main(["--root", str(saved), "--against", str(default)]) == 0
    assert capsys.readouterr().out == from_tree


def test_the_half_budget_profile_halves_every_count_of_episodes_and_nothing_else():
    import yaml

    default = yaml.safe_load((ROOT / "workflow" / "config" / "default.yaml").read_text())["experiment"]["curriculum"]
    half = yaml.safe_load((ROOT / "workflow" / "config" / "half_budget.yaml").read_text())
    curriculum = half["experiment"]["curriculum"]
    assert set(half["experiment"]) == {"curriculum"}, "only the curriculum's episode counts change"
    assert [s["name"] for s in curriculum["stages"]] == [s["name"] for s in default["stages"]]
    assert [s["train"] for s in curriculum["stages"]] == [s["train"] for s in default["stages"]]
    assert [2 * s["episodes"] for s in curriculum["stages"]] == [s["episodes"] for s in default["stages"]]
    for mask in ("firm_mask", "tax_mask"):
        for key in ("start", "end"):
            assert 2 * curriculum[mask][key] == default[mask][key]
    assert 2 * curriculum["labor_disutility_decay"] == default["labor_disutility_decay"]
    for group, schedule in default["entropy"].items():
        assert curriculum["entropy"][group] == {**schedule, "decay": schedule["decay"] / 2}


def test_the_documents_quote_the_half_budget_study():
    import csv

    performance = " ".join((ROOT / "docs" / "performance.md").read_text().split())
    archive = ROOT / "results" / "default" / "archive"
    cheap = budget_check.evaluations(ROOT / "results" / "studies" / "half_budget.json", "open")
    default = budget_check.evaluations(archive, "open")
    assert all(sorted(seeds) == [0, 1, 2, 3, 4] for seeds in cheap.values())

    def shown(stats):
        return "{:+,.0f} [{:+,.0f}, {:+,.0f}]".format(stats["mean"], *stats["ci95"])

    names = {"learned": "learned government", "consumer_welfare": "consumer-welfare government",
             "fixed20": "fixed 20%", "fixed00": "fixed 0%/0%"}
    for row in budget_check.branch_rows(cheap, default, "welfare/total"):
        assert f"| {names[row['branch']]} | {shown(row['difference'])} |" in performance
    leads = {row["baseline"]: row for row in budget_check.comparison_rows(cheap, default, "welfare/total")}
    assert (f"best equal rate is the same ({shown(leads['fixed20']['cheap'])} at half the training, "
            f"{shown(leads['fixed20']['default'])} in the default)") in performance
    assert f"({shown(leads['fixed00']['cheap'])} and {shown(leads['fixed00']['default'])})" in performance
    # training (stages and ablation) as a share of every stored job's time
    seconds = {}
    for path in archive.glob("*/seed*/benchmarks/**/*.benchmark.tsv"):
        with path.open() as handle:
            seconds[path] = float(list(csv.DictReader(handle, delimiter="\t"))[-1]["s"])
    training = sum(s for p, s in seconds.items()
                   if p.name.split(".")[0] in ("consumers", "firms", "taxes", "government", "nocurriculum"))
    share = training / sum(seconds.values())
    assert f"is {share:.0%} of the committed pipelines' job time" in performance
    assert f"save about {share / 2:.0%} of the jobs' time" in performance


def test_the_results_quote_the_half_budget_study():
    results = " ".join((ROOT / "docs" / "results.md").read_text().split())
    cheap = budget_check.evaluations(ROOT / "results" / "studies" / "half_budget.json", "open")
    default = budget_check.evaluations(ROOT / "results" / "default" / "archive", "open")

    def shown(stats, sign=""):
        low, high = stats["ci95"]
        return f"{stats['mean']:{sign},.0f} [{low:,.0f}, {high:,.0f}]"

    branches = {row["branch"]: row["difference"] for row in budget_check.branch_rows(cheap, default, "welfare/total")}
    leads = {row["baseline"]: row["cheap"] for row in budget_check.comparison_rows(cheap, default, "welfare/total")}
    assert f"the learned government ends where it does here, {shown(branches['learned'], '+')} paired" in results
    assert f"fixed 0% ends {shown(branches['fixed00'])} higher" in results
    assert f"lead over it is {shown(leads['fixed00'], '+')}: indistinguishable" in results
    assert f"{shown(leads['fixed20'], '+')} with half the training" in results
