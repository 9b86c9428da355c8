"""`python -m pipeline.analysis.report --root results/<profile> --workflow-config results/<profile>/workflow.yaml`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from envs.rbc.config import ConfigError

from ...orchestration.archive import stored_pipelines
from ...orchestration.plan import WorkflowPlan
from .figures import write_figures
from .markdown import render_file
from .mlflow_log import log_to_tracking
from .results import Results
from .stats import clean
from .summary import build_summary


def _write(path: Path, text: str) -> None:
    """Through a temporary file, so an interrupted report leaves the previous file or none, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def make_report(root: Path, workflow_config: Path, logs: Path | None = None, track: bool = True) -> dict:
    """summary.json, the figures, then summary.md from summary.json alone; returns the summary as written."""
    config = yaml.safe_load(workflow_config.read_text()) or {}
    plan = WorkflowPlan(config)
    if logs is None:
        logs = root.parent.parent / "logs" / plan.profile
    stored, notes = stored_pipelines(plan, root)
    for note in notes:
        print(note, file=sys.stderr)
    results = Results(root, plan, stored)
    summary = build_summary(results, logs)
    figures = write_figures(results, summary, root / "figures")
    summary["figures"] = {name: str(p.relative_to(root)) for name, p in figures.items()}
    summary = clean(summary)
    _write(root / "summary.json", json.dumps(summary, indent=2))
    _write(root / "summary.md", render_file(root / "summary.json"))
    if track:
        parents = log_to_tracking(plan, summary, [root / "summary.md", root / "summary.json", *figures.values()])
        if parents:
            print(f"logged the report to {len(parents)} parent run(s)", file=sys.stderr)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tables and figures of one workflow profile.")
    parser.add_argument("--root", type=Path, required=True, help="results/<profile>")
    parser.add_argument("--workflow-config", type=Path, required=True, help="the merged workflow config (YAML)")
    parser.add_argument("--logs", type=Path, default=None, help="benchmark records (default: logs/<profile>)")
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    args = parser.parse_args(argv)
    try:
        summary = make_report(args.root, args.workflow_config, args.logs, track=not args.no_tracking)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    primary = summary["primary_economy"]
    learned = summary["economies"][primary]["welfare"].get("learned")
    if learned is not None:
        fair = learned["every_fixed"]
        best = f"; against the best fixed tax ({fair['best']['branch']}): {fair['verdict']}" if fair["best"] else ""
        print(f"{primary}: learned welfare {learned['policy']['over_seeds']['mean']:.1f} over seeds{best}")
    return 0
