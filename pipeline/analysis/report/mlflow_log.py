"""The report on MLflow: each pipeline's parent run gets its headline numbers and the report's files."""

from __future__ import annotations

import time
from pathlib import Path

from ...config import ExperimentConfig
from ...orchestration.plan import WorkflowPlan
from .stats import finite


def summary_metrics(pipeline: dict) -> dict[str, float]:
    """The headline numbers of one pipeline (economy x seed), as flat MLflow metrics."""
    metrics: dict[str, float] = {}
    w = pipeline["welfare"]
    metrics["summary/welfare_learned"] = w["learned"]["mean"]
    if "best_fixed" in w:
        metrics["summary/welfare_best_fixed"] = w["best_fixed"]["mean"]
        metrics["summary/welfare_best_fixed_rate"] = w["best_fixed"]["rate"]
        metrics["summary/welfare_ratio_learned_to_best_fixed"] = w["ratio_to_best_fixed"]  # dropped when undefined
        metrics["summary/welfare_difference_learned_to_best_fixed"] = w["difference_to_best_fixed"]
    if pipeline.get("welfare_consumer_only"):
        metrics["summary/welfare_consumer_only"] = pipeline["welfare_consumer_only"]["consumer_welfare"]["mean"]
    for group, e in pipeline["epsilon"].items():
        metrics[f"summary/epsilon_relative/{group}"] = e["relative"]
        metrics[f"summary/epsilon_absolute/{group}"] = e["absolute"]
    return {k: float(v) for k, v in metrics.items() if finite(v)}


def log_to_tracking(plan: WorkflowPlan, summary: dict, files: list[Path]) -> list[str]:
    """Headline numbers and report files on every pipeline's parent run; returns the parent run ids."""
    logged = []
    for economy in plan.economies:
        for seed in plan.seeds:
            config = ExperimentConfig.from_dict(plan.experiment_dict(economy, seed, "evaluate")).tracking
            if not config.enabled or not config.pipeline:
                continue
            from mlflow.entities import Metric

            from ...tracking import _retry, client_for, experiment_for, find_or_create_parent, tracking_uri

            uri = tracking_uri(config)
            client = client_for(uri)
            # Found by its tags, exactly as the rules found it, so the report lands on the same run.
            parent = find_or_create_parent(client, experiment_for(client, config, uri), config.pipeline)
            stamp = int(time.time() * 1000)
            metrics = summary_metrics(summary["economies"][economy]["seeds"][str(seed)])
            _retry(client.log_batch, parent, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()])
            for path in files:
                artifact_dir = "report/figures" if path.suffix == ".png" else "report"
                _retry(client.log_artifact, parent, str(path), artifact_dir)
            _retry(client.set_tag, parent, "dge.report", "true")
            _retry(client.set_terminated, parent, "FINISHED")
            logged.append(parent)
    return logged

