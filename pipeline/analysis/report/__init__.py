"""`python -m pipeline.analysis.report`: the paper's tables and figures for one workflow profile.

    python -m pipeline.analysis.report --root results/<profile> --workflow-config results/<profile>/workflow.yaml

Reads what the workflow's rules wrote (per-stage metrics logs, evaluations, every best-response
probe, benchmark records, the machine record) and writes `summary.json` for machines, `summary.md`
for people and the figures under `figures/`. Seeds are the unit: every headline is a mean over
seeds with a Student-t interval, comparisons are paired by seed, and a verdict is stated only where
the interval allows it; with one seed the summary says that no statement over seeds is possible.
The markdown is rendered from `summary.json` alone, so it cannot state a number the JSON does not
hold. With tracking enabled, each pipeline's parent MLflow run receives its headline numbers and
the report files.

    results.py        the workflow's files for one profile, read once (Results)
    stats.py          per-seed and over-seed intervals, paired comparisons and verdicts, correlations
    welfare.py        every policy's outcomes, learned governments against the fixed taxes, the ablation
    taxgrid.py        every fixed tax as an income x corporate table, with the seeds that collapsed
    epsilon.py        best-response gaps, relative gaps, power checks, individual deviations (Table 3)
    firms.py          per-firm tables, idle firms, firms the consumers ignore
    plausibility.py   the paper's checks of economic sense (Figs. 5 and 7)
    definitions.py    one sentence per statistic, for summary.json and summary.md
    summary.py        summary.json: all of the above for every economy, with the machine and wall time
    figures.py        the figures, one function each
    markdown.py       summary.md from summary.json (templates/summary.md.j2) and its number formats
    mlflow_log.py     the report on each pipeline's parent MLflow run
    cli.py            the command line (__main__.py runs it)
"""

from .cli import main, make_report
from .epsilon import epsilon, power_check, relative_gap, seed_entry
from .figures import FIGURES, write_figures
from .firms import idle_firms, ignored_firms, per_firm
from .markdown import render_markdown
from .plausibility import across_runs, plausibility
from .results import Results
from .stats import correlation, over_seeds, paired, verdict
from .summary import build_summary, machine, wall_time
from .taxgrid import tax_grid_table
from .welfare import welfare_comparisons

__all__ = [
    "FIGURES", "Results", "across_runs", "build_summary", "correlation", "epsilon", "idle_firms", "ignored_firms",
    "machine", "main", "make_report", "over_seeds", "paired", "per_firm", "plausibility", "power_check",
    "relative_gap", "render_markdown", "seed_entry", "tax_grid_table", "verdict", "wall_time", "welfare_comparisons",
    "write_figures",
]
