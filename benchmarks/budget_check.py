"""Whether a cheaper profile reaches the same results: its evaluations against the stored pipelines', by seed.

    python benchmarks/budget_check.py --root results/half
    python benchmarks/budget_check.py --root results/half --against results/default/archive --economy open
    python benchmarks/budget_check.py --root results/half --save results/studies/half_budget.json

The one lever left for a shorter default DAG (docs/performance.md) is the same outcome at fewer episodes:
a profile whose stages are shorter, or that steps more economies per update. Run the cheap profile's
branches (any subset; `./run main <evaluation files> --configfile cheap.yaml`) and this compares each
branch's evaluated welfare with the default's stored pipeline of the same seed, and each comparison the
report makes (the learned government minus a fixed tax) in both profiles. A branch is the same where the
cheap minus default difference, paired by seed, holds zero; a comparison is the same where the cheap
profile's mean lies inside the default's interval over seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from dag_levers import holds_zero, interval_text  # noqa: E402

from pipeline.learning.metrics import mean_ci95  # noqa: E402

METRICS = ("welfare/total", "welfare/consumer_only")
POLICY = "learned"


def evaluations(root: Path, economy: str) -> dict[str, dict[int, dict]]:
    """branch -> seed -> the evaluation's metric means, for every evaluated branch under `root`/`economy`, or
    as a file written by --save (a study's few numbers, committed where its checkpoints and full
    evaluations are not)."""
    if root.is_file():
        saved = json.loads(root.read_text()).get(economy, {})
        return {branch: {int(seed): means for seed, means in seeds.items()} for branch, seeds in saved.items()}
    found: dict[str, dict[int, dict]] = {}
    for path in sorted((root / economy).glob("seed*/*/evaluation.json")):
        seed = int(path.parents[1].name.removeprefix("seed"))
        record = json.loads(path.read_text())
        found.setdefault(path.parent.name, {})[seed] = {
            "collapsed": record.get("collapsed_at") is not None,
            **{metric: record["metrics"][metric]["mean"] for metric in METRICS},
        }
    return found


def paired(a: dict[int, float], b: dict[int, float]) -> dict | None:
    """a - b over the seeds both have (mean_ci95), None under two seeds."""
    seeds = sorted(a.keys() & b.keys())
    return mean_ci95([a[s] - b[s] for s in seeds]) if len(seeds) > 1 else None


def branch_rows(cheap: dict, default: dict, metric: str) -> list[dict]:
    rows = []
    for branch in sorted(cheap.keys() & default.keys()):
        values = {name: {s: v[metric] for s, v in runs[branch].items()} for name, runs in
                  (("cheap", cheap), ("default", default))}
        collapsed = {name: sorted(s for s, v in runs[branch].items() if v["collapsed"]) for name, runs in
                     (("cheap", cheap), ("default", default))}
        difference = paired(values["cheap"], values["default"])
        rows.append({"branch": branch, "seeds": sorted(values["cheap"].keys() & values["default"].keys()),
                     "cheap": values["cheap"], "default": values["default"], "difference": difference,
                     "collapsed": collapsed,
                     "same": difference is not None and holds_zero(difference) and collapsed["cheap"] == collapsed[
                         "default"]})
    return rows


def comparison_rows(cheap: dict, default: dict, metric: str) -> list[dict]:
    """The learned government minus each fixed tax, in both profiles, over the seeds both ran."""
    rows = []
    if POLICY not in cheap or POLICY not in default:
        return rows
    for branch in sorted(b for b in cheap.keys() & default.keys() if b.startswith("fixed")):
        seeds = cheap[branch].keys() & default[branch].keys() & cheap[POLICY].keys() & default[POLICY].keys()
        lead = {name: paired({s: runs[POLICY][s][metric] for s in seeds}, {s: runs[branch][s][metric] for s in seeds})
                for name, runs in (("cheap", cheap), ("default", default))}
        if lead["cheap"] is None:
            continue
        low, high = lead["default"]["ci95"]
        rows.append({"baseline": branch, "seeds": sorted(seeds), **lead,
                     "same": low <= lead["cheap"]["mean"] <= high})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the cheap profile's results, e.g. results/half")
    parser.add_argument("--against", type=Path, default=ROOT / "results" / "default" / "archive",
                        help="the default profile's stored pipelines")
    parser.add_argument("--economy", default="open")
    parser.add_argument("--save", type=Path, default=None,
                        help="also write the cheap profile's per-seed means here (readable again as --root)")
    args = parser.parse_args(argv)

    cheap, default = evaluations(args.root, args.economy), evaluations(args.against, args.economy)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps({args.economy: cheap}, indent=1, sort_keys=True) + "\n")
    if not cheap.keys() & default.keys():
        print(f"error: no branch evaluated both under {args.root / args.economy} and {args.against / args.economy}",
              file=sys.stderr)
        return 2
    verdicts = []
    for metric in METRICS:
        print(f"{metric}: cheap minus default, paired by seed")
        for row in branch_rows(cheap, default, metric):
            note = "" if row["collapsed"]["cheap"] == row["collapsed"]["default"] else (
                f"; collapsed: cheap {row['collapsed']['cheap']}, default {row['collapsed']['default']}")
            print(f"  {row['branch']:>16} seeds {row['seeds']}: {interval_text(row['difference']):>28}"
                  f"  {'same' if row['same'] else 'DIFFERS'}{note}")
            verdicts.append(row["same"])
        print(f"{metric}: learned minus each fixed tax, cheap against default")
        for row in comparison_rows(cheap, default, metric):
            print(f"  {row['baseline']:>16} seeds {row['seeds']}: cheap {interval_text(row['cheap']):>28}, default "
                  f"{interval_text(row['default']):>28}  {'same' if row['same'] else 'DIFFERS'}")
            verdicts.append(row["same"])
    print(f"\n{sum(verdicts)} of {len(verdicts)} checks the same")
    return 0


if __name__ == "__main__":
    sys.exit(main())
