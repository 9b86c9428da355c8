"""What the stored pipelines say about three ways of cutting the default DAG's work, and what each would save.

    python benchmarks/dag_levers.py
    python benchmarks/dag_levers.py --branch-cut 2600 --search-cut 300

The default DAG needs hours (docs/performance.md); the issue asks for 60 minutes without changing the
science. Each lever below is judged on the stored pipelines (results/<profile>/archive), which keep every
branch's training curve, every best-response search's selection record and every job's time:

* fixed-tax branches stopped at an earlier episode (default: the end of the taxes stage): a fixed tax needs
  no government training. The branch's welfare at the cut (its training episodes just before it) against
  its end (the last episodes), paired by seed: the cut changes the report where that difference is larger
  than the interval of the comparison the report makes with the branch (learned government minus that
  fixed tax, paired by seed, from the branches' evaluations), or where a branch collapses after the cut.
  Training welfare stands in for evaluated welfare: the script prints how far apart the two are at the end.
* best-response searches stopped at an earlier episode: a search keeps the best policy it has seen at each
  selection point, so one whose selected episode is at or before the cut keeps the same policy; one that
  selected later would report another, and its gap (the largest over the learners) may change.
* the fixed cost of a job (starting Python, importing torch, tensordict and MLflow, opening the store),
  measured here and multiplied by the pipelines' job count: the most that fewer or lighter jobs could save.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipeline.learning.metrics import mean_ci95  # noqa: E402
from pipeline.orchestration.archive import benchmark_jobs, job_seconds  # noqa: E402

WELFARE = "welfare/total"
TARGET_S = 2 * 60 * 60  # the 60 minutes, two jobs at a time on two cores
# What one workflow job does before and after its own work: the evaluation rule's imports, then an MLflow
# SQLite store opened as every tracked job opens it.
JOB_START = (
    "import time, sys; t = time.perf_counter(); import pipeline.analysis.evaluate; "
    "from pipeline.tracking.store import client_for; client_for(f'sqlite:///{sys.argv[1]}/mlflow.db'); "
    "print(time.perf_counter() - t)"
)


@dataclass(frozen=True)
class Pipeline:
    economy: str
    seed: int
    path: Path

    def read(self, relative: str) -> dict:
        return json.loads((self.path / relative).read_text())

    def job_seconds(self, relative: str) -> float:
        """Seconds of one job, from its record under the pipeline's benchmarks (0 where there is none)."""
        record = self.path / "benchmarks" / relative
        return (job_seconds(record) or 0.0) if record.is_file() else 0.0

    def jobs(self) -> list:
        return benchmark_jobs(self.path / "benchmarks")


def stored_pipelines(archive: Path) -> list[Pipeline]:
    return [Pipeline(economy.name, int(seed.name.removeprefix("seed")), seed)
            for economy in sorted(p for p in archive.iterdir() if p.is_dir())
            for seed in sorted(economy.glob("seed*"), key=lambda p: int(p.name.removeprefix("seed")))]


def stage_curve(branch: Path, stage: str) -> dict[int, float]:
    """Episode -> training welfare of one stage of a branch (empty when the branch stopped before it)."""
    path = branch / f"{stage}.metrics.csv"
    if not path.exists():
        return {}
    with path.open() as handle:
        return {int(row["episode"]): float(row[WELFARE]) for row in csv.DictReader(handle)}


def welfare_curve(branch: Path) -> dict[int, float]:
    """Episode -> training welfare of a branch, over its stages in order."""
    return {**stage_curve(branch, "taxes"), **stage_curve(branch, "government")}


def window_mean(curve: dict[int, float], end: int, window: int) -> float:
    episodes = [e for e in curve if end - window <= e < end]
    if len(episodes) < window:
        raise ValueError(f"the curve has {len(episodes)} episodes in [{end - window}, {end}), not {window}")
    return sum(curve[e] for e in episodes) / window


def evaluated_welfare(pipeline: Pipeline, branch: str) -> float:
    return pipeline.read(f"{branch}/evaluation.json")["metrics"][WELFARE]["mean"]


def half_width(interval: dict) -> float:
    low, high = interval["ci95"]
    return (high - low) / 2


def holds_zero(stats: dict) -> bool:
    low, high = stats["ci95"]
    return low <= 0 <= high


def interval_text(stats: dict | None) -> str:
    """"+mean [+low, +high]", or "-" where there is no interval."""
    if stats is None:
        return "-"
    low, high = stats["ci95"]
    return f"{stats['mean']:+,.0f} [{low:+,.0f}, {high:+,.0f}]"


@dataclass(frozen=True)
class BranchCut:
    economy: str
    branch: str
    full_seeds: list[int]         # seeds where the branch trained to the end
    collapsed_after_cut: list[int]  # seeds where it collapsed after the cut: cut short, it would report producing
    change: dict | None            # cut minus end, training welfare, over the full seeds (mean_ci95)
    comparison: dict | None        # learned minus the branch, evaluated welfare, over the full seeds (mean_ci95)
    end_vs_evaluation: float | None  # largest |training end - evaluated| / |evaluated| over the full seeds
    saved_s: float                 # job seconds the cut saves over all seeds

    @property
    def changes_report(self) -> bool | None:
        """Whether the cut moves what the report says of the branch by more than the interval it says it with."""
        if self.collapsed_after_cut:
            return True
        if self.change is None or self.comparison is None:
            return None
        return abs(self.change["mean"]) > half_width(self.comparison)

    @property
    def shifts(self) -> bool:
        """Whether the cut moves the branch's welfare systematically (its interval over seeds excludes zero)."""
        return self.change is not None and not holds_zero(self.change)


def branch_cuts(pipelines: list[Pipeline], cut: int, window: int) -> list[BranchCut]:
    """Every fixed-tax branch of every economy, judged at global episode `cut`."""
    rows = []
    for economy in sorted({p.economy for p in pipelines}):
        of_economy = [p for p in pipelines if p.economy == economy]
        branches = sorted({b.name for p in of_economy for b in p.path.iterdir() if b.name.startswith("fixed")})
        learned = {p.seed: evaluated_welfare(p, "learned") for p in of_economy}
        for branch in branches:
            full, late, changes, comparisons, gaps, saved = [], [], [], [], [], 0.0
            for pipeline in of_economy:
                directory = pipeline.path / branch
                if not directory.exists():
                    continue
                collapsed_at = pipeline.read(f"{branch}/evaluation.json").get("collapsed_at")
                curve = welfare_curve(directory)
                government = stage_curve(directory, "government")
                if government:  # the job's time in proportion to the episodes it ran after the cut
                    after = sum(1 for e in government if e >= cut)
                    saved += pipeline.job_seconds(f"{branch}/government.benchmark.tsv") * after / len(government)
                if collapsed_at is not None:
                    if collapsed_at >= cut:
                        late.append(pipeline.seed)
                    continue
                at_end = window_mean(curve, max(curve) + 1, window)
                changes.append(window_mean(curve, cut, window) - at_end)
                evaluated = evaluated_welfare(pipeline, branch)
                comparisons.append(learned[pipeline.seed] - evaluated)
                gaps.append(abs(at_end - evaluated) / abs(evaluated))
                full.append(pipeline.seed)
            rows.append(BranchCut(
                economy, branch, full, late,
                mean_ci95(changes) if len(changes) > 1 else None,
                mean_ci95(comparisons) if len(comparisons) > 1 else None,
                max(gaps) if gaps else None, saved,
            ))
    return rows


@dataclass(frozen=True)
class SearchCut:
    economy: str
    type: str
    probe: str
    selected: list[tuple[int, int]]  # (seed, selected episode)
    saved_s: float

    def later(self, cut: int) -> list[int]:
        return [seed for seed, episode in self.selected if episode > cut]


def search_cuts(pipelines: list[Pipeline], cut: int) -> list[SearchCut]:
    """Every best-response probe of every economy: where each seed's search found the policy it kept."""
    found: dict[tuple[str, str, str], list] = {}
    for pipeline in pipelines:
        for result in sorted(pipeline.path.glob("*/best_response/*/*/best_response.json")):
            record = json.loads(result.read_text())
            probe, kind = result.parent.name, result.parent.parent.name
            job = pipeline.job_seconds(f"{result.parents[3].name}/best_response_{kind}_{probe}.benchmark.tsv")
            saved = job * max(record["episodes"] - cut, 0) / record["episodes"]
            entry = found.setdefault((pipeline.economy, kind, probe), [[], 0.0])
            entry[0].append((pipeline.seed, record["selected_episode"]))
            entry[1] += saved
    return [SearchCut(economy, kind, probe, selected, saved)
            for (economy, kind, probe), (selected, saved) in sorted(found.items())]


def type_gaps_changed(pipelines: list[Pipeline], cut: int, learners: tuple[str, ...]) -> dict[str, list]:
    """(economy, type) -> seeds whose type gap (the largest learner gain) came from a search selected after the cut."""
    changed: dict[str, list] = {}
    for pipeline in pipelines:
        for kind_dir in sorted(pipeline.path.glob("*/best_response/*")):
            records = {probe: json.loads((kind_dir / probe / "best_response.json").read_text())
                       for probe in learners if (kind_dir / probe / "best_response.json").exists()}
            if not records:
                continue
            winner = max(records.values(), key=lambda r: r["gain"]["mean"])
            key = f"{pipeline.economy} {kind_dir.name}"
            changed.setdefault(key, [])
            if winner["selected_episode"] > cut and winner["gain"]["mean"] > 0:
                changed[key].append(pipeline.seed)
    return changed


def job_start_seconds(repeats: int = 3) -> float:
    """The fastest of a few fresh interpreters doing what every job does before its own work."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as store:
            done = subprocess.run([sys.executable, "-c", JOB_START, store], cwd=ROOT, check=True,
                                  capture_output=True, text=True)
        times.append(float(done.stdout.split()[-1]))
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=ROOT / "results" / "default" / "archive")
    parser.add_argument("--branch-cut", type=int, default=None,
                        help="global episode at which fixed-tax branches would stop (default: the end of the taxes "
                             "stage)")
    parser.add_argument("--search-cut", type=int, default=200,
                        help="episode at which best-response searches would stop")
    parser.add_argument("--window", type=int, default=50, help="training episodes averaged at the cut and at the end")
    parser.add_argument("--learners", nargs="+", default=["pg", "ppo"], help="the probes whose largest gain is the gap")
    args = parser.parse_args(argv)

    pipelines = stored_pipelines(args.archive)
    if not pipelines:
        print(f"error: no stored pipelines under {args.archive}", file=sys.stderr)
        return 2
    every_job = [job for p in pipelines for job in p.jobs()]
    jobs, jobs_sum = len(every_job), sum(job.seconds for job in every_job)
    cut = args.branch_cut or _taxes_end(pipelines)
    print(f"{len(pipelines)} stored pipelines, {jobs} jobs, {jobs_sum:,.0f} s of jobs\n")

    print(f"1. Fixed-tax branches stopped at episode {cut} instead of their end (training welfare, last "
          f"{args.window} episodes before each point; interval over the seeds where the branch kept producing)")
    print(f"{'economy':>7} {'branch':>11} {'seeds':>5}  {'cut - end':>26}  {'learned - branch (report)':>28}  "
          f"{'train/eval':>10}  verdict")
    rows = branch_cuts(pipelines, cut, args.window)
    for row in rows:
        change, comparison = interval_text(row.change), interval_text(row.comparison)
        agreement = f"{row.end_vs_evaluation:.1%}" if row.end_vs_evaluation is not None else "-"
        if row.collapsed_after_cut:
            verdict = f"CHANGES: collapses after the cut in seed(s) {row.collapsed_after_cut}"
        elif row.changes_report is None:
            verdict = "collapses before the cut: unchanged" if not row.full_seeds else "too few seeds to judge"
        else:
            verdict = ("CHANGES the report" if row.changes_report
                       else "SHIFTS, inside the report's interval" if row.shifts else "inside the report's interval")
        print(f"{row.economy:>7} {row.branch:>11} {len(row.full_seeds):>5}  {change:>26}  {comparison:>28}  "
              f"{agreement:>10}  {verdict}")
    saved = sum(r.saved_s for r in rows)
    changed = [r.branch for r in rows if r.changes_report]
    shifted = [r.branch for r in rows if r.shifts and not r.changes_report]
    print(f"saves {saved:,.0f} s of jobs ({saved / jobs_sum:.1%}); changes the reported numbers of {len(changed)} "
          f"branches {changed}, shifts {len(shifted)} more {shifted} systematically")

    print(f"\n2. Best-response searches stopped at episode {args.search_cut}: seeds whose search kept a policy "
          "found later")
    searches = search_cuts(pipelines, args.search_cut)
    for search in searches:
        later = search.later(args.search_cut)
        print(f"{search.economy:>7} {search.type:>10} {search.probe:>9}: selected episodes "
              f"{[e for _, e in search.selected]}; later than the cut in {len(later)} of {len(search.selected)}")
    saved_search = sum(s.saved_s for s in searches)
    later_total = sum(len(s.later(args.search_cut)) for s in searches)
    searches_total = sum(len(s.selected) for s in searches)
    gaps = type_gaps_changed(pipelines, args.search_cut, tuple(args.learners))
    gap_changes = sum(len(v) for v in gaps.values())
    print(f"saves {saved_search:,.0f} s of jobs ({saved_search / jobs_sum:.1%}); {later_total} of {searches_total} "
          f"searches keep another policy; the type gap comes from such a search in {gap_changes} of "
          f"{len(pipelines) * len({k.split()[1] for k in gaps})} (pipeline, type) pairs: "
          + ", ".join(f"{k} seeds {v}" for k, v in gaps.items() if v))

    start = job_start_seconds()
    overhead = start * jobs
    print(f"\n3. The fixed cost of a job here: {start:.2f} s (imports and the MLflow store), x {jobs} jobs = "
          f"{overhead:,.0f} s ({overhead / jobs_sum:.1%} of the jobs): the most that fewer or lighter jobs save")

    left = jobs_sum - saved - saved_search - overhead
    print(f"\nAll three together (an optimistic sum: the cut jobs' fixed cost is counted twice) leave {left:,.0f} s "
          f"of jobs ({left / jobs_sum:.0%}); the 60-minute target on two cores needs {TARGET_S:,} s of jobs "
          f"({TARGET_S / jobs_sum:.0%})")
    return 0


def _taxes_end(pipelines: list[Pipeline]) -> int:
    """The first episode of the government stage, from a stored branch that reached it."""
    for pipeline in pipelines:
        for branch in sorted(pipeline.path.glob("fixed*")):
            government = stage_curve(branch, "government")
            if government:
                return min(government)
    raise ValueError("no stored fixed-tax branch reached its government stage")


if __name__ == "__main__":
    sys.exit(main())
