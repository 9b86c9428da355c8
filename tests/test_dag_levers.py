"""benchmarks/dag_levers.py on a hand-written archive whose every answer is worked out by hand, and the
figures docs/performance.md quotes from it on the committed archive.

The hand archive: one economy, three seeds, a prefix of 10 episodes, fixed-tax branches with a taxes stage
of 4 episodes (10-13) and a government stage of 8 (14-21), windows of 2 episodes, and best-response
searches of 400 episodes.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import dag_levers  # noqa: E402

PERFORMANCE = " ".join((ROOT / "docs" / "performance.md").read_text().split())  # one line: quotes wrap
T975_2 = 4.302652729911275  # Student's t, 2 degrees of freedom, 97.5% (tables)


def write_curve(branch: Path, stage: str, welfare: dict[int, float]) -> None:
    branch.mkdir(parents=True, exist_ok=True)
    with (branch / f"{stage}.metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["episode", "reward/firm", "welfare/total"])
        for episode, value in welfare.items():
            writer.writerow([episode, 0.0, value])


def write_job(pipeline: Path, relative: str, seconds: float) -> None:
    path = pipeline / "benchmarks" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")


def write_evaluation(branch: Path, welfare: float, collapsed_at: int | None = None) -> None:
    branch.mkdir(parents=True, exist_ok=True)
    (branch / "evaluation.json").write_text(json.dumps(
        {"metrics": {"welfare/total": {"mean": welfare}}, "collapsed_at": collapsed_at}))


def write_search(pipeline: Path, kind: str, probe: str, selected: int, gain: float, seconds: float) -> None:
    directory = pipeline / "learned" / "best_response" / kind / probe
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "best_response.json").write_text(json.dumps(
        {"episodes": 400, "selected_episode": selected, "gain": {"mean": gain}}))
    write_job(pipeline, f"learned/best_response_{kind}_{probe}.benchmark.tsv", seconds)


def steady(taxes: float, government: float) -> tuple[dict[int, float], dict[int, float]]:
    """Welfare `taxes` through the taxes stage (10-13), then `government` through the government stage (14-21)."""
    return {e: taxes for e in range(10, 14)}, {e: government for e in range(14, 22)}


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """Seeds 0-2 of economy `open`:

    fixed00: 100 at the cut (episodes 12-13), 90 + 2*seed at the end (20-21): cut - end = 10, 8, 6.
             Learned minus it, evaluated: 1000 + 100*seed. Government stage job 80 s per seed.
    fixed20: 500 throughout, except seed 2 ends at 400: cut - end = 0, 0, 100.
             Learned minus it: 10 - 2, 10 + 0, 10 + 2 (a narrow comparison).
    fixed40: collapses at episode 12 (seed 0, before the cut) and 17 (seeds 1, 2: after the cut).
    """
    root = tmp_path / "archive"
    for seed in range(3):
        pipeline = root / "open" / f"seed{seed}"
        write_evaluation(pipeline / "learned", 2000.0)
        taxes, government = steady(100.0, 90.0 + 2 * seed)
        taxes[12] = taxes[13] = 100.0
        write_curve(pipeline / "fixed00", "taxes", taxes)
        write_curve(pipeline / "fixed00", "government", government)
        write_evaluation(pipeline / "fixed00", 2000.0 - (1000.0 + 100 * seed))
        write_job(pipeline, "fixed00/government.benchmark.tsv", 80.0)
        write_job(pipeline, "fixed00/taxes.benchmark.tsv", 40.0)
        taxes, government = steady(500.0, 500.0)
        if seed == 2:
            government[20] = government[21] = 400.0
        write_curve(pipeline / "fixed20", "taxes", taxes)
        write_curve(pipeline / "fixed20", "government", government)
        write_evaluation(pipeline / "fixed20", 2000.0 - (10.0 + 2 * (seed - 1)))
        write_job(pipeline, "fixed20/government.benchmark.tsv", 80.0)
        collapse = 12 if seed == 0 else 17
        taxes, government = steady(50.0, 0.0)
        write_curve(pipeline / "fixed40", "taxes", {e: v for e, v in taxes.items() if e <= collapse})
        if collapse >= 14:
            write_curve(pipeline / "fixed40", "government", {e: v for e, v in government.items() if e <= collapse})
            write_job(pipeline, "fixed40/government.benchmark.tsv", 40.0)
        write_evaluation(pipeline / "fixed40", 0.0, collapsed_at=collapse)
        # consumers: pg wins with a search selected at 300 in seed 0 only; ppo selects at 100 everywhere
        write_search(pipeline, "consumer", "pg", 300 if seed == 0 else 150, 5.0 if seed == 0 else 1.0, 40.0)
        write_search(pipeline, "consumer", "ppo", 100, 3.0, 40.0)
        # firms: pg selects late in every seed but ppo's gain is the larger one
        write_search(pipeline, "firm", "pg", 400, 1.0, 20.0)
        write_search(pipeline, "firm", "ppo", 0, 2.0, 20.0)
    return root


def by_branch(archive: Path, cut: int = 14) -> dict[str, dag_levers.BranchCut]:
    pipelines = dag_levers.stored_pipelines(archive)
    return {row.branch: row for row in dag_levers.branch_cuts(pipelines, cut, window=2)}


def test_the_cut_defaults_to_the_first_episode_of_the_government_stage(archive):
    assert dag_levers._taxes_end(dag_levers.stored_pipelines(archive)) == 14


def test_a_branch_that_moves_after_the_cut_by_more_than_the_reports_interval_changes_it(archive):
    rows = by_branch(archive)
    change = rows["fixed00"].change  # 10, 8, 6: mean 8, sd 2
    assert change["mean"] == pytest.approx(8.0)
    assert change["ci95"] == pytest.approx([8 - T975_2 * 2 / 3**0.5, 8 + T975_2 * 2 / 3**0.5])
    comparison = rows["fixed00"].comparison  # 1000, 1100, 1200: mean 1100, sd 100
    assert comparison["mean"] == pytest.approx(1100.0)
    assert dag_levers.half_width(comparison) == pytest.approx(T975_2 * 100 / 3**0.5)
    # 8 is inside 1100's half-width of 248, but the change (6 to 10) is the same sign in every seed
    assert rows["fixed00"].changes_report is False and rows["fixed00"].shifts is True
    fixed20 = rows["fixed20"]  # change 0, 0, 100: mean 33.3; comparison 8, 10, 12: half-width 4.97
    assert fixed20.change["mean"] == pytest.approx(100 / 3)
    assert dag_levers.half_width(fixed20.comparison) == pytest.approx(T975_2 * 2 / 3**0.5)
    assert fixed20.changes_report is True and fixed20.shifts is False  # 0, 0, 100 is not systematic


def test_a_branch_that_collapses_after_the_cut_changes_the_report_and_one_before_it_does_not(archive):
    fixed40 = by_branch(archive)["fixed40"]
    assert fixed40.full_seeds == [] and fixed40.collapsed_after_cut == [1, 2]
    assert fixed40.changes_report is True
    early = by_branch(archive, cut=18)["fixed40"]  # both collapses (12, 17) come before episode 18
    assert early.collapsed_after_cut == [] and early.changes_report is None


def test_training_welfare_is_compared_with_the_evaluation_at_the_end(archive):
    # fixed00 ends at 90, 92, 94 in training and is evaluated at 1000, 900, 800: 0.910, 0.898, 0.883
    assert by_branch(archive)["fixed00"].end_vs_evaluation == pytest.approx((1000 - 90) / 1000)


def test_the_saving_is_each_government_jobs_time_in_proportion_to_its_episodes_after_the_cut(archive):
    rows = by_branch(archive, cut=16)
    # fixed00 and fixed20: 6 of 8 government episodes after 16, 80 s each, three seeds
    assert rows["fixed00"].saved_s == pytest.approx(3 * 80 * 6 / 8)
    assert rows["fixed20"].saved_s == pytest.approx(3 * 80 * 6 / 8)
    # fixed40 seeds 1 and 2 ran episodes 14-17 of the stage in 40 s: 16 and 17 come after the cut
    assert rows["fixed40"].saved_s == pytest.approx(2 * 40 * 2 / 4)


def test_a_search_that_selected_after_the_cut_would_keep_another_policy(archive):
    pipelines = dag_levers.stored_pipelines(archive)
    searches = {(s.type, s.probe): s for s in dag_levers.search_cuts(pipelines, 200)}
    assert searches[("consumer", "pg")].later(200) == [0]
    assert searches[("consumer", "ppo")].later(200) == []
    assert searches[("firm", "pg")].later(200) == [0, 1, 2]
    # each search ran 400 episodes: half of its job's time comes after episode 200
    assert searches[("consumer", "pg")].saved_s == pytest.approx(3 * 40 / 2)
    assert searches[("firm", "ppo")].saved_s == pytest.approx(3 * 20 / 2)
    # the consumers' gap is pg's in seed 0 (5 > 3, selected at 300) and ppo's elsewhere (3 > 1, at 100);
    # the firms' is ppo's (2 > 1), selected at 0, although pg selected late
    assert dag_levers.type_gaps_changed(pipelines, 200, ("pg", "ppo")) == {"open consumer": [0], "open firm": []}


def test_the_report_adds_up(archive, monkeypatch, capsys):
    monkeypatch.setattr(dag_levers, "job_start_seconds", lambda: 2.0)
    assert dag_levers.main(["--archive", str(archive), "--window", "2"]) == 0
    out = capsys.readouterr().out
    jobs = 3 * (2 + 1 + 4) + 2  # per seed fixed00 two, fixed20 one, four searches; fixed40's in seeds 1 and 2
    total = 3 * (80 + 40 + 80 + 2 * 40 + 2 * 20) + 2 * 40
    assert f"3 stored pipelines, {jobs} jobs, {total:,.0f} s of jobs" in out
    # cut at 14: every government episode goes; fixed40 (seeds 1, 2) ran 14-17 of its stage
    saved = 3 * 80 + 3 * 80 + 2 * 40
    assert f"saves {saved:,.0f} s of jobs ({saved / total:.1%})" in out
    assert "changes the reported numbers of 2 branches ['fixed20', 'fixed40'], shifts 1 more ['fixed00']" in out
    assert f"x {jobs} jobs = {2.0 * jobs:,.0f} s" in out


def test_an_empty_archive_is_an_error_not_a_report(tmp_path, capsys):
    (tmp_path / "archive").mkdir()
    assert dag_levers.main(["--archive", str(tmp_path / "archive")]) == 2
    assert "no stored pipelines" in capsys.readouterr().err


COMMITTED = ROOT / "results" / "default" / "archive"


def quoted(pattern: str) -> re.Match:
    found = re.search(pattern, PERFORMANCE)
    assert found, f"docs/performance.md no longer quotes {pattern!r}"
    return found


def test_the_documents_quote_the_committed_archives_levers():
    pipelines = dag_levers.stored_pipelines(COMMITTED)
    jobs_sum = sum(job.seconds for p in pipelines for job in p.jobs())
    rows = {(r.economy, r.branch): r for r in dag_levers.branch_cuts(pipelines, 2200, 50)}
    saved = sum(r.saved_s for r in rows.values())
    assert quoted(r"saves ([\d.]+)% of the jobs' time by stopping")[1] == f"{saved / jobs_sum * 100:.1f}"
    fixed00 = rows[("open", "fixed00")].change
    low, high = fixed00["ci95"]
    pattern = r"of its last episodes, paired over the five seeds, is ([+\d,]+) \[([+\d,]+), ([+\d,]+)\]"
    assert quoted(pattern).groups() == (f"{fixed00['mean']:+,.0f}", f"{low:+,.0f}", f"{high:+,.0f}")
    assert rows[("open", "fixed20c60")].collapsed_after_cut == [3] and "collapses at episode 2,552" in PERFORMANCE
    assert json.loads((COMMITTED / "open" / "seed3" / "fixed20c60" / "evaluation.json").read_text())[
        "collapsed_at"] == 2552
    shift = rows[("open", "fixed20c00")].change
    assert "20%/0% {:+,.0f} [{:+,.0f}, {:+,.0f}]".format(shift["mean"], *shift["ci95"]) in PERFORMANCE
    searches = dag_levers.search_cuts(pipelines, 200)
    later = sum(len(s.later(200)) for s in searches)
    total = sum(len(s.selected) for s in searches)
    assert quoted(r"(\d+) of the (\d+) stored searches").groups() == (str(later), str(total))
    gaps = dag_levers.type_gaps_changed(pipelines, 200, ("pg", "ppo"))
    assert quoted(r"in (\d+) of the (\d+) pairs of pipeline and type").groups() == (
        str(sum(map(len, gaps.values()))), str(len(pipelines) * 3))
