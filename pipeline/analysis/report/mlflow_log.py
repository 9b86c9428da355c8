"""The report on MLflow: each pipeline's parent run gets its headline numbers and the report's files."""

from __future__ import annotations

import time
from pathlib import Path

from ...config import ExperimentConfig
from ...orchestration.plan import WorkflowPlan
from .stats import finite


def summary_metrics(economy: dict, seed: str) -> dict[str, float]:
    """The headline numbers of one pipeline (economy x seed), as flat MLflow metrics.

    The best fixed tax is the economy's best point over seeds (every fixed tax it ran), read at this seed.
    """
    metrics: dict[str, float] = {}
    welfare = economy["welfare"]
    if "learned" in welfare:
        w = welfare["learned"]
        metrics["summary/welfare_learned"] = w["policy"]["per_seed"][seed]["mean"]
        fair = w["every_fixed"]
        if fair["best"] is not None and seed in fair["per_seed"]:
            row = fair["per_seed"][seed]
            metrics["summary/welfare_best_fixed"] = row["baseline"]
            metrics["summary/welfare_best_fixed_income_rate"] = fair["best"]["income"]
            metrics["summary/welfare_best_fixed_corporate_rate"] = fair["best"]["corporate"]
            metrics["summary/welfare_ratio_learned_to_best_fixed"] = row["ratio"]  # dropped when undefined
            metrics["summary/welfare_difference_learned_to_best_fixed"] = row["difference"]
    if "consumer_welfare" in welfare:
        metrics["summary/welfare_consumer_only"] = welfare["consumer_welfare"]["policy"]["per_seed"][seed]["mean"]
    branch = "learned" if "learned" in economy["epsilon"] else next(iter(economy["epsilon"]), None)
    for group, e in economy["epsilon"].get(branch, {}).items():
        metrics[f"summary/epsilon_relative/{group}"] = e["per_seed"][seed]["relative"]
        metrics[f"summary/epsilon_absolute/{group}"] = e["per_seed"][seed]["gap"]["mean"]
    return {k: float(v) for k, v in metrics.items() if finite(v)}


def log_to_tracking(plan: WorkflowPlan, summary: dict, files: list[Path]) -> list[str]:
    """Headline numbers, report files and provenance tags on every pipeline's parent run; returns the run ids."""
    logged = []
    provenance = {(p["economy"], p["seed"]): p for p in summary.get("pipelines", [])}
    for economy, seed in plan.pipelines():
        config = ExperimentConfig.from_dict(plan.experiment_dict(economy, seed, "evaluate")).tracking
        if not config.enabled or not config.pipeline:
            continue
        from mlflow.entities import Metric, RunTag

        from ...tracking import _retry, client_for, experiment_for, find_or_create_parent, tracking_uri

        uri = tracking_uri(config)
        client = client_for(uri)
        # Found by its tags, exactly as the rules found it, so the report lands on the same run.
        parent = find_or_create_parent(client, experiment_for(client, config, uri), config.pipeline)
        stamp = int(time.time() * 1000)
        metrics = summary_metrics(summary["economies"][economy], str(seed))
        # A stored pipeline's parent holds this report's numbers but no job of this run: the tags say where
        # the numbers come from, as the report's provenance table does.
        origin = provenance.get((economy, seed), {})
        tags = {tag: str(origin[key]) for tag, key in (("dge.source", "source"), ("dge.commit", "commit"))
                if origin.get(key)}
        _retry(client.log_batch, parent, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
               tags=[RunTag(k, v) for k, v in tags.items()])
        for path in files:
            artifact_dir = "report/figures" if path.suffix == ".png" else "report"
            _retry(client.log_artifact, parent, str(path), artifact_dir)
        _retry(client.set_tag, parent, "dge.report", "true")
        _retry(client.set_terminated, parent, "FINISHED")
        logged.append(parent)
    return logged

