"""MLflow tracking across the workflow: one parent run per pipeline, one child run per rule.

Runs are identified by tags, never by name or order: a parent carries `dge.pipeline=<id>` and
`dge.role=parent`; a child carries the same pipeline tag and `dge.rule=<rule id>`. A rule that runs
again finds its tree: an unfinished child (an interrupted stage being resumed) is continued; a
finished one is marked superseded (soft-deleted) and replaced, so the tree always shows the latest
result of every rule.

MLflow is imported lazily (it costs about two seconds), and a disabled tracker is a no-op, so
tests and quick runs pay nothing. The store defaults to SQLite under `results/`;
MLFLOW_TRACKING_URI or `tracking.uri` point it anywhere, e.g. a team's MLflow server.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from .config import TrackingConfig

DEFAULT_STORE = Path("results") / "mlflow.db"
ARTIFACT_ROOT = Path("results") / "mlflow-artifacts"
TAG_PIPELINE, TAG_ROLE, TAG_RULE = "dge.pipeline", "dge.role", "dge.rule"


def tracking_uri(config: TrackingConfig) -> str:
    if config.uri:
        return config.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    DEFAULT_STORE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


def client_for(uri: str):
    """An MlflowClient; a SQLite store is opened under an exclusive lock.

    Opening a store that does not exist yet creates its tables by migrations, and two workflow
    jobs starting together on a fresh results/ directory would both run them and collide
    ("duplicate column name"). The lock makes the first one create the store and the others wait
    for it; once the store exists, opening it only reads the schema version.
    """
    from mlflow.tracking import MlflowClient

    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    import fcntl

    database = Path(uri.removeprefix("sqlite:///").split("?")[0])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # make sure the store is open while locked
            return client
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> {'training.num_envs': '16', ...} for MLflow params."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = str(data)[:500]
    return out


def _retry(call: Callable, *args, attempts: int = 8, **kwargs):
    """SQLite stores refuse concurrent writers for a moment ("database is locked"); wait and retry."""
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - mlflow wraps the driver's error in several types
            if "locked" not in str(err).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)


class Tracker:
    """One child run (a workflow rule) under its pipeline's parent run."""

    def __init__(self, config: TrackingConfig, rule: str, run_name: str | None = None, tags: dict | None = None):
        self.config = config
        self.enabled = config.enabled
        self.rule = rule
        self.run_name = run_name or rule
        self.tags = dict(tags or {})
        self.client = None
        self.run_id: str | None = None
        self.parent_id: str | None = None
        self.experiment_id: str | None = None
        self._pending: list = []
        self._logged_through = -1  # a continued run already holds metrics up to this step

    # ------------------------------------------------------------------ lifecycle
    def start(self, params: dict | None = None) -> "Tracker":
        if not self.enabled:
            return self
        self.uri = tracking_uri(self.config)
        self.client = client_for(self.uri)
        self.experiment_id = self._experiment()
        pipeline = self.config.pipeline
        tags = {TAG_RULE: self.rule, **self.tags}
        if pipeline:
            self.parent_id = find_or_create_parent(self.client, self.experiment_id, pipeline)
            tags.update({TAG_PIPELINE: pipeline, "mlflow.parentRunId": self.parent_id})
        existing = self._existing_child(pipeline)
        if existing is not None and existing.info.status != "FINISHED":
            self.run_id = existing.info.run_id
            _retry(self.client.update_run, self.run_id, status="RUNNING")
            # The resumed stage recomputes, bit for bit, the episodes between its last checkpoint and
            # the interruption; their metrics were already logged, so they are not logged twice.
            self._logged_through = max(
                (m.step for key in existing.data.metrics
                 for m in _retry(self.client.get_metric_history, self.run_id, key)),
                default=-1,
            )
        else:
            if existing is not None:
                _retry(self.client.set_tag, existing.info.run_id, "dge.superseded", "true")
                _retry(self.client.delete_run, existing.info.run_id)
            run = _retry(self.client.create_run, self.experiment_id, run_name=self.run_name, tags=tags)
            self.run_id = run.info.run_id
            if params:
                self.log_params(params)
        return self

    def finish(self, status: str = "FINISHED") -> None:
        if not self.enabled or self.run_id is None:
            return
        self.flush()
        _retry(self.client.set_terminated, self.run_id, status=status)

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish("FINISHED" if exc_type is None else ("KILLED" if exc_type is KeyboardInterrupt else "FAILED"))

    # ------------------------------------------------------------------ logging
    def log_params(self, params: dict) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Param

        flat = flatten(params)
        items = [Param(k, v) for k, v in flat.items()]
        for i in range(0, len(items), 100):
            _retry(self.client.log_batch, self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if not self.enabled:
            return
        from mlflow.entities import Metric

        if step <= self._logged_through:
            return
        stamp = int(time.time() * 1000)
        self._pending.extend(Metric(key, float(value), stamp, int(step)) for key, value in metrics.items())
        if len(self._pending) >= 900:
            self.flush()

    def flush(self) -> None:
        if not self.enabled or not self._pending:
            return
        for i in range(0, len(self._pending), 900):
            _retry(self.client.log_batch, self.run_id, metrics=self._pending[i : i + 900])
        self._pending = []

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled and Path(path).exists():
            _retry(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, Any]) -> None:
        if self.enabled:
            for key, value in tags.items():
                _retry(self.client.set_tag, self.run_id, key, str(value))

    # ------------------------------------------------------------------ lookup
    def _experiment(self) -> str:
        return experiment_for(self.client, self.config, self.uri)

    def _existing_child(self, pipeline: str | None):
        query = f"tags.`{TAG_RULE}` = '{self.rule}'"
        if pipeline:
            query += f" and tags.`{TAG_PIPELINE}` = '{pipeline}'"
        runs = _retry(self.client.search_runs, [self.experiment_id], filter_string=query, max_results=5)
        return runs[0] if runs else None


def experiment_for(client, config: TrackingConfig, uri: str) -> str:
    """The experiment's id, creating it (artifacts under results/ for the default store) if needed."""
    name = config.experiment
    experiment = _retry(client.get_experiment_by_name, name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:") and not config.uri and not os.environ.get("MLFLOW_TRACKING_URI"):
        ARTIFACT_ROOT.mkdir(parents=True, exist_ok=True)
        location = ARTIFACT_ROOT.resolve().as_uri()
    try:
        return _retry(client.create_experiment, name, artifact_location=location)
    except Exception:  # another rule created it in the meantime
        return _retry(client.get_experiment_by_name, name).experiment_id


def find_or_create_parent(client, experiment_id: str, pipeline: str) -> str:
    """The pipeline's parent run, created by whichever job of the pipeline asks first.

    The first jobs of a pipeline start together, so two of them can both find no parent and both
    create one. Every caller therefore settles on the same run, the earliest created (ties by run
    id), and a caller whose fresh run lost deletes it before anything is logged under it.
    """
    query = f"tags.`{TAG_PIPELINE}` = '{pipeline}' and tags.`{TAG_ROLE}` = 'parent'"
    runs = _retry(client.search_runs, [experiment_id], filter_string=query, max_results=50)
    created = None
    if not runs:
        created = _retry(
            client.create_run, experiment_id, run_name=pipeline, tags={TAG_PIPELINE: pipeline, TAG_ROLE: "parent"}
        )
        runs = _retry(client.search_runs, [experiment_id], filter_string=query, max_results=50)
        if not any(r.info.run_id == created.info.run_id for r in runs):
            runs = [*runs, created]
    chosen = min(runs, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
    if created is not None and created.info.run_id != chosen:
        _retry(client.delete_run, created.info.run_id)
    return chosen
