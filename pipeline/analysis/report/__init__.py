"""`python -m pipeline.analysis.report`: the paper's tables and figures for one workflow profile.

    python -m pipeline.analysis.report --root results/<profile> --workflow-config results/<profile>/workflow.yaml

Reads what the workflow's rules wrote (per-stage metrics logs, evaluations, best responses,
benchmark records) and writes `summary.json` for machines, `summary.md` for people and the
figures under `figures/`. Every number in the summary is computed from those files; where the
data cannot support a statement (one seed, overlapping intervals, a training gain of zero) the
summary says so instead of concluding anything. The markdown is rendered from `summary.json`
alone, so it cannot state a number the JSON does not hold. With tracking enabled, each
pipeline's parent MLflow run receives the headline numbers and the report files.

    results.py        the workflow's files for one profile, read once (Results)
    stats.py          intervals over seeds, ratios, overlaps, correlations, JSON-safe numbers
    welfare.py        learned against fixed taxes, every policy's outcomes, the curriculum ablation
    epsilon.py        best-response gaps against each type's training gain (the paper's Table 3)
    firms.py          per-firm tables, idle firms, firms the consumers ignore
    plausibility.py   the paper's checks of economic sense (Figs. 5 and 7)
    summary.py        summary.json: all of the above for every economy and seed
    figures.py        the five figures
    markdown.py       summary.md from summary.json (templates/summary.md.j2) and its number formats
    mlflow_log.py     the report on each pipeline's parent MLflow run
    cli.py            the command line (__main__.py runs it)
"""

from .cli import main, make_report
from .epsilon import training_window
from .figures import FIGURES, write_figures
from .firms import idle_firms, ignored_firms, per_firm
from .markdown import render_markdown
from .plausibility import across_runs, plausibility
from .results import Results
from .stats import across_seeds, correlation
from .summary import build_summary, wall_time
from .welfare import per_step_welfare, welfare_table

__all__ = [
    "FIGURES", "Results", "across_runs", "across_seeds", "build_summary", "correlation", "idle_firms",
    "ignored_firms", "main", "make_report", "per_firm", "per_step_welfare", "plausibility", "render_markdown",
    "training_window", "wall_time", "welfare_table", "write_figures",
]
