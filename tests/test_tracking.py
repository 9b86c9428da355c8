"""MLflow tracking of training stages: child runs under a parent found by tags, params and
per-episode metrics, replacement of finished children, continuation of interrupted ones.

One SQLite store serves the whole module (creating one costs seconds); tests keep apart by using
different pipeline ids.
"""

from __future__ import annotations

import csv

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from pipeline.learning import session as session_module
from pipeline.learning.train import run_stage

from pipeline_support import small_config

EXPERIMENT = "dge-marl-tests"
RULE = "train:learned:consumers"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    # artifacts next to the database, not in the working directory
    experiment_id = client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    return uri, client, experiment_id


def tracked_config(uri: str, pipeline: str, **training):
    return small_config(
        training={"num_envs": 4, "checkpoint_every": 3, "threads": 1, **training},
        tracking={"enabled": True, "uri": uri, "experiment": EXPERIMENT, "pipeline": pipeline, "log_every": 1},
    )


def runs(client, experiment_id, query: str, view=ViewType.ACTIVE_ONLY):
    return client.search_runs([experiment_id], filter_string=query, run_view_type=view)


def parent_and_children(client, experiment_id, pipeline: str, view=ViewType.ACTIVE_ONLY):
    parents = runs(client, experiment_id, f"tags.`dge.pipeline` = '{pipeline}' and tags.`dge.role` = 'parent'")
    assert len(parents) == 1
    children = runs(client, experiment_id, f"tags.`dge.pipeline` = '{pipeline}' and tags.`dge.rule` = '{RULE}'", view)
    return parents[0], children


def steps(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_stage_logs_params_and_metrics_to_a_child_of_the_pipeline_run(store, tmp_path, monkeypatch):
    uri, client, experiment_id = store
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "consumers.pt"
    run_stage(tracked_config(uri, "logs/seed0"), "consumers", out, progress=False)

    parent, children = parent_and_children(client, experiment_id, "logs/seed0")
    assert len(children) == 1
    child = children[0]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.tags["dge.stage"] == "consumers" and child.data.tags["dge.kind"] == "train"
    assert child.info.status == "FINISHED"
    params = child.data.params
    assert params["config.training.num_envs"] == "4"
    assert params["config.economy.n_consumers"] == "5"
    assert params["stage"] == "consumers"
    with out.with_suffix(".metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    logged = steps(client, child.info.run_id, "reward/consumer")
    assert [s for s, _ in logged] == list(range(8))  # every episode of the stage, once
    assert [v for _, v in logged] == pytest.approx([float(r["reward/consumer"]) for r in rows], rel=1e-6)
    assert [s for s, _ in steps(client, child.info.run_id, "loss/consumer/objective")] == list(range(8))
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "checkpoints")}
    assert artifacts == {"checkpoints/consumers.pt"}
    assert not (tmp_path / "mlruns").exists()


def test_rerunning_a_rule_replaces_its_finished_child(store, tmp_path, monkeypatch):
    uri, client, experiment_id = store
    monkeypatch.chdir(tmp_path)
    config = tracked_config(uri, "rerun/seed0")
    run_stage(config, "consumers", tmp_path / "a.pt", progress=False)
    _, first = parent_and_children(client, experiment_id, "rerun/seed0")
    run_stage(config, "consumers", tmp_path / "a.pt", progress=False)
    parent, active = parent_and_children(client, experiment_id, "rerun/seed0")
    assert len(active) == 1 and active[0].info.run_id != first[0].info.run_id
    assert active[0].data.tags["mlflow.parentRunId"] == parent.info.run_id
    old = client.get_run(first[0].info.run_id)
    assert old.info.lifecycle_stage == "deleted"  # soft-deleted, still in the store
    assert old.data.tags["dge.superseded"] == "true"
    _, everything = parent_and_children(client, experiment_id, "rerun/seed0", ViewType.ALL)
    assert len(everything) == 2
    # another pipeline's run of the same rule is untouched
    _, other = parent_and_children(client, experiment_id, "logs/seed0")
    assert len(other) == 1 and other[0].info.lifecycle_stage == "active"


def test_interrupted_stage_continues_its_child_run(store, tmp_path, monkeypatch):
    uri, client, experiment_id = store
    monkeypatch.chdir(tmp_path)
    config = tracked_config(uri, "resume/seed0")
    real = session_module.Session.run_episode
    calls = {"n": 0}

    def interrupt_at_eighth(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:  # checkpoint at episode 6, episode 7 done and logged, then interrupted
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(session_module.Session, "run_episode", interrupt_at_eighth)
    with pytest.raises(KeyboardInterrupt):
        run_stage(config, "consumers", tmp_path / "c.pt", progress=False)
    _, children = parent_and_children(client, experiment_id, "resume/seed0")
    assert len(children) == 1 and children[0].info.status == "KILLED"
    killed = children[0].info.run_id

    monkeypatch.setattr(session_module.Session, "run_episode", real)
    run_stage(config, "consumers", tmp_path / "c.pt", progress=False)
    _, children = parent_and_children(client, experiment_id, "resume/seed0", ViewType.ALL)
    assert [c.info.run_id for c in children] == [killed]
    assert children[0].info.status == "FINISHED"
    logged = steps(client, killed, "reward/consumer")
    assert [s for s, _ in logged] == list(range(8)), "each episode's metrics are logged exactly once"


def test_mlflow_gets_every_log_every_th_episode_and_the_csv_every_episode(store, tmp_path, monkeypatch):
    """What README's Tracking section says: MLflow every `tracking.log_every` episodes and the stage's last, the
    stage's metrics CSV every episode."""
    uri, client, experiment_id = store
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "consumers.pt"
    config = tracked_config(uri, "logs/every3")
    config.tracking.log_every = 3
    run_stage(config, "consumers", out, progress=False)
    _, children = parent_and_children(client, experiment_id, "logs/every3")
    logged = [s for s, _ in steps(client, children[0].info.run_id, "reward/consumer")]
    assert logged == [0, 3, 6, 7]  # the consumers stage has 8 episodes, 0..7
    with out.with_suffix(".metrics.csv").open() as handle:
        assert [int(r["episode"]) for r in csv.DictReader(handle)] == list(range(8))


def test_the_workflow_opens_each_pipelines_parent_once_before_its_jobs(store):
    """open_parents (the Snakefile's onstart) makes one parent per tracked pipeline, none for an untracked
    one, and a second call (a later run of the workflow) finds them instead of adding any."""
    from pipeline.config import TrackingConfig
    from pipeline.tracking import open_parents

    uri, client, experiment_id = store
    configs = [TrackingConfig(enabled=True, uri=uri, experiment=EXPERIMENT, pipeline=f"onstart/seed{seed}")
               for seed in (0, 1)]
    configs.append(TrackingConfig(enabled=False, uri=uri, experiment=EXPERIMENT, pipeline="onstart/seed2"))
    first = open_parents(configs)
    assert open_parents(configs) == first and len(set(first)) == 2

    def parents(seed):
        return client.search_runs([experiment_id], f"tags.`dge.pipeline` = 'onstart/seed{seed}' "
                                                   "and tags.`dge.role` = 'parent'", run_view_type=ViewType.ALL)

    assert [[r.info.run_id for r in parents(seed)] for seed in (0, 1)] == [[first[0]], [first[1]]]
    assert parents(2) == []


def test_a_stage_that_starts_over_after_an_interruption_gets_a_new_child_run(store, tmp_path, monkeypatch):
    """Interrupted, then run with a changed config: the stage starts from episode 0 (its resume checkpoint is
    another experiment's), so the interrupted attempt's run is superseded and every episode is logged anew."""
    uri, client, experiment_id = store
    monkeypatch.chdir(tmp_path)
    real = session_module.Session.run_episode
    calls = {"n": 0}

    def interrupt_at_eighth(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(session_module.Session, "run_episode", interrupt_at_eighth)
    with pytest.raises(KeyboardInterrupt):
        run_stage(tracked_config(uri, "restart/seed0"), "consumers", tmp_path / "d.pt", progress=False)
    _, (killed,) = parent_and_children(client, experiment_id, "restart/seed0")
    assert [s for s, _ in steps(client, killed.info.run_id, "reward/consumer")] == list(range(7))

    monkeypatch.setattr(session_module.Session, "run_episode", real)
    changed = tracked_config(uri, "restart/seed0", learning_rate={"consumer": 0.002})
    run_stage(changed, "consumers", tmp_path / "d.pt", progress=False)
    _, (fresh,) = parent_and_children(client, experiment_id, "restart/seed0")
    assert fresh.info.run_id != killed.info.run_id and fresh.info.status == "FINISHED"
    assert fresh.data.params["config.training.learning_rate.consumer"] == "0.002"
    old = client.get_run(killed.info.run_id)
    assert old.info.lifecycle_stage == "deleted" and old.data.tags["dge.superseded"] == "true"
    with (tmp_path / "d.metrics.csv").open() as handle:
        rows = [float(r["reward/consumer"]) for r in csv.DictReader(handle)]
    logged = steps(client, fresh.info.run_id, "reward/consumer")
    assert [s for s, _ in logged] == list(range(8))
    assert [v for _, v in logged] == pytest.approx(rows, rel=1e-6)
