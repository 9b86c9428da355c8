"""MLflow tracking across the workflow: one parent run per pipeline, one child run per rule.

Runs are identified by tags, never by name or order: a parent carries `dge.pipeline=<id>` and
`dge.role=parent`; a child carries the same pipeline tag and `dge.rule=<rule id>`. A rule that runs
again finds its tree: the unfinished child of a stage resumed from its checkpoint is continued; any
other (finished, or of an attempt that starts over) is marked superseded (soft-deleted) and replaced,
so the tree always shows the latest result of every rule.

MLflow is imported lazily (it costs about two seconds), and a disabled tracker is a no-op, so
tests and quick runs pay nothing. The store defaults to SQLite under `results/`;
MLFLOW_TRACKING_URI or `tracking.uri` point it anywhere, e.g. a team's MLflow server
(docs/cluster.md). `store.py` finds the store and tells an unreachable server from a real error.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ..config import TrackingConfig
from .store import (  # noqa: F401 - the store's helpers are part of this package's interface
    DEFAULT_STORE,
    TrackingUnavailable,
    _retry,
    call_through_outages,
    client_for,
    is_outage,
    probe,
    refused_message,
    tracking_uri,
    unreachable_message,
)

ARTIFACT_ROOT = Path("results") / "mlflow-artifacts"
TAG_PIPELINE, TAG_ROLE, TAG_RULE = "dge.pipeline", "dge.role", "dge.rule"
OUTAGE_PATIENCE_S = 300.0  # how long a finished rule waits for a server that went away to deliver its run


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


class Tracker:
    """One child run (a workflow rule) under its pipeline's parent run.

    A remote server that goes away while the rule runs (restarted, briefly down) costs no metrics:
    they stay buffered, a flush during the outage is skipped with growing pauses so training does
    not wait, and the run's end waits up to OUTAGE_PATIENCE_S for the server before giving up with
    a warning. The rule's own outputs never depend on the server: its end is not an error.
    """

    def __init__(self, config: TrackingConfig, rule: str, run_name: str | None = None, tags: dict | None = None):
        self.config = config
        self.enabled = config.enabled
        self.rule = rule
        self.run_name = run_name or rule
        self.tags = dict(tags or {})
        self.client = None
        self.uri = ""
        self.run_id: str | None = None
        self.parent_id: str | None = None
        self.experiment_id: str | None = None
        self._pending: list = []
        self._logged_through = -1  # a continued run already holds metrics up to this step
        self._outage_since: float | None = None
        self._next_attempt = 0.0
        self._pause = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self, params: dict | None = None, resuming: bool = False) -> "Tracker":
        """Finds or creates the run; refuses (TrackingUnavailable) within seconds if the store does not answer.

        `resuming`: the rule continues from a checkpoint of its interrupted run, so that run is continued
        too. A rule that starts over (no checkpoint yet, a changed config, an evaluation) supersedes it:
        its metrics belong to an attempt whose results were thrown away.
        """
        if not self.enabled:
            return self
        self.uri = tracking_uri(self.config)
        self.client = client_for(self.uri)
        from mlflow.exceptions import MlflowException

        try:
            self._open(params, resuming)
        except TrackingUnavailable:
            raise
        except MlflowException as err:  # answers, but not to us (e.g. a Host header it does not allow)
            if is_outage(self.uri, err):
                raise TrackingUnavailable(unreachable_message(self.uri, "it stopped answering")) from None
            raise TrackingUnavailable(refused_message(self.uri, err)) from None
        return self

    def _open(self, params: dict | None, resuming: bool) -> None:
        self.experiment_id = self._experiment()
        pipeline = self.config.pipeline
        tags = {TAG_RULE: self.rule, **self.tags}
        if pipeline:
            self.parent_id = find_or_create_parent(self.client, self.experiment_id, pipeline)
            tags.update({TAG_PIPELINE: pipeline, "mlflow.parentRunId": self.parent_id})
        existing = self._existing_child(pipeline)
        if resuming and existing is not None and existing.info.status != "FINISHED":
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

    def finish(self, status: str = "FINISHED") -> None:
        """Delivers what is buffered and closes the run. A finished rule waits out an outage; a stopped one
        (killed, failed) makes one attempt, because its scheduler gives it only seconds before the kill."""
        if not self.enabled or self.run_id is None:
            return
        patience = OUTAGE_PATIENCE_S if status == "FINISHED" else 0.0
        began = time.monotonic()
        delivered = self.flush(patience=patience)
        left = max(patience - (time.monotonic() - began), 0.0)
        closed = self._deliver(f"its status {status}", self.client.set_terminated, self.run_id, status=status,
                               patience=left)
        if delivered and closed and self._outage_since is not None:
            self._say(f"MLflow server {self.uri} is back; run {self.run_id} ({self.rule}) is complete")
        elif not delivered:
            self._say(f"warning: MLflow server {self.uri} still unreachable after {patience:.0f} s; "
                      f"{len(self._pending)} metric values of run {self.run_id} ({self.rule}) were not logged "
                      "(the rule's outputs are saved)")

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

    def flush(self, patience: float = 0.0) -> bool:
        """Sends the buffered metrics; False if the server is away (they stay buffered for the next flush).

        During an outage a flush without patience returns at once until the next attempt is due (5 s,
        doubling to a minute), so the training loop never waits on the server.
        """
        if not self.enabled or not self._pending:
            return True
        if not patience and self._outage_since is not None and (
                time.monotonic() < self._next_attempt or probe(self.uri) is not None):
            self._note_outage()
            return False
        deadline = time.monotonic() + patience
        while self._pending:
            batch = self._pending[:900]
            try:
                call_through_outages(self.uri, max(deadline - time.monotonic(), 0.0), self.client.log_batch,
                                     self.run_id, metrics=batch)
            except TrackingUnavailable:
                self._note_outage()
                return False
            del self._pending[: len(batch)]
        if self._outage_since is not None and patience == 0.0:
            self._say(f"MLflow server {self.uri} is back; the buffered metrics are logged")
            self._outage_since, self._pause = None, 0.0
        return True

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled and Path(path).exists():
            self._deliver(f"artifact {Path(path).name}", self.client.log_artifact, self.run_id, str(path),
                          artifact_path, patience=OUTAGE_PATIENCE_S)

    def set_tags(self, tags: dict[str, Any]) -> None:
        if self.enabled:
            for key, value in tags.items():
                self._deliver(f"tag {key}", self.client.set_tag, self.run_id, key, str(value),
                              patience=OUTAGE_PATIENCE_S)

    # ------------------------------------------------------------------ outages
    def _deliver(self, what: str, call, *args, patience: float, **kwargs) -> bool:
        """`call` through an outage of at most `patience` seconds; a warning instead of an error after that."""
        try:
            call_through_outages(self.uri, patience, call, *args, **kwargs)
            return True
        except TrackingUnavailable:
            self._note_outage()
            self._say(f"warning: MLflow server {self.uri} unreachable; {what} of run {self.run_id} ({self.rule}) "
                      "was not logged")
            return False

    def _note_outage(self) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            self._say(f"warning: MLflow server {self.uri} unreachable; metrics of run {self.run_id} ({self.rule}) "
                      "are buffered and sent when it answers again")
        if now >= self._next_attempt:  # pauses of 5, 10, 20, 40, then 60 s between attempts
            self._pause = min(60.0, max(5.0, 2 * self._pause))
            self._next_attempt = now + self._pause

    @staticmethod
    def _say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

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


def open_parents(configs) -> list[str]:
    """Creates (or finds) the parent run of every pipeline in `configs`, one after the other, in this process.

    The workflow calls it before the first job starts (workflow/Snakefile, onstart). Jobs that start
    together could otherwise both create a parent, and find_or_create_parent cannot settle every such
    race: a run's start time is stamped by the client, so on a loaded server the earlier-stamped run
    can be committed after the later one was already chosen by the job that created it.
    Returns the parent run ids, in order; a disabled tracker or one without a pipeline is skipped.
    """
    parents = []
    for config in configs:
        if not config.enabled or not config.pipeline:
            continue
        uri = tracking_uri(config)
        client = client_for(uri)
        parents.append(find_or_create_parent(client, experiment_for(client, config, uri), config.pipeline, "workflow"))
    return parents


def find_or_create_parent(client, experiment_id: str, pipeline: str, opened_by: str = "job") -> str:
    """The pipeline's parent run, created by whichever job of the pipeline asks first.

    In a workflow, open_parents has created it before any job starts. Run alone, the first jobs of a
    pipeline can start together, so two of them can both find no parent and both create one. Every
    caller therefore settles on the same run, the earliest created (ties by run id), and a caller whose fresh run lost deletes it before anything is logged under it. The
    parent's `dge.opened_by` tag says whether the workflow or a job created it.
    """
    query = f"tags.`{TAG_PIPELINE}` = '{pipeline}' and tags.`{TAG_ROLE}` = 'parent'"
    runs = _retry(client.search_runs, [experiment_id], filter_string=query, max_results=50)
    created = None
    if not runs:
        tags = {TAG_PIPELINE: pipeline, TAG_ROLE: "parent", "dge.opened_by": opened_by}
        created = _retry(client.create_run, experiment_id, run_name=pipeline, tags=tags)
        runs = _retry(client.search_runs, [experiment_id], filter_string=query, max_results=50)
        if not any(r.info.run_id == created.info.run_id for r in runs):
            runs = [*runs, created]
    chosen = min(runs, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
    if created is not None and created.info.run_id != chosen:
        _retry(client.delete_run, created.info.run_id)
    return chosen
