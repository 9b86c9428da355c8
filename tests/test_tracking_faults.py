"""The tracking server as a fault: unreachable when a stage starts, gone and back while it trains.

An unreachable server is refused within seconds, in one line that names the URI and how to turn
tracking off, before any training (pipeline/tracking/store.py says why: a run with tracking silently
off leaves a hole no rerun fills). A real `mlflow server` killed and started again while a stage
trains costs no metric: the stage buffers them and delivers each episode's exactly once.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time

import pytest

from envs.rbc.config import ConfigError
from pipeline.tracking.store import (
    PROBE_TIMEOUT_S,
    START_PATIENCE_S,
    TrackingUnavailable,
    adopt_workflow_uri,
    check_reachable,
)

from mlflow_support import MlflowServer
from pipeline_support import small_config_dict, write_config

TRAIN = [sys.executable, "-m", "pipeline.learning.train"]


def stage_config(tmp_path, episodes: int, **tracking):
    stages = [{"name": "consumers", "episodes": episodes, "train": ["consumer"]}]
    data = small_config_dict(
        curriculum={"stages": stages, "firm_mask": None, "tax_mask": None},
        training={"num_envs": 2, "checkpoint_every": 4, "threads": 1},
        tracking={"enabled": True, "experiment": "faults", "pipeline": "faults/seed0", "log_every": 1, **tracking},
    )
    return write_config(tmp_path / "stage.yaml", data)


def test_the_workflows_tracking_uri_becomes_every_jobs_environment_and_leaves_the_config(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = {"profile": "smoke", "tracking_uri": "http://login01:5000"}
    assert adopt_workflow_uri(config) == "http://login01:5000"
    assert config == {"profile": "smoke"}  # not in the workflow config, so in no experiment config
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://login01:5000"
    for bad in (5000, "", "http://login01 :5000", ["http://a"]):
        with pytest.raises(ConfigError, match=r"^invalid workflow config: tracking_uri=.*; allowed: "):
            adopt_workflow_uri({"tracking_uri": bad})


def test_a_server_that_never_answers_is_refused_after_the_start_patience():
    """A port that accepts connections but never answers: the hang a frozen server causes, cut short."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(TrackingUnavailable) as err:
            check_reachable(uri)
        elapsed = time.monotonic() - began
    assert START_PATIENCE_S <= elapsed < START_PATIENCE_S + PROBE_TIMEOUT_S + 2
    assert str(err.value).startswith(f"MLflow tracking server {uri} is unreachable (no answer")


def test_an_unreachable_server_stops_a_stage_in_seconds_with_one_line_before_training(tmp_path):
    config = stage_config(tmp_path, episodes=4)
    out = tmp_path / "consumers.pt"
    env = {**os.environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    began = time.monotonic()
    done = subprocess.run([*TRAIN, "--config", str(config), "--stage", "consumers", "--out", str(out), "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=240)
    elapsed = time.monotonic() - began
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "http://127.0.0.1:9" in lines[0] and "--set tracking.enabled=false" in lines[0]
    assert "experiment.tracking.enabled: false" in lines[0]
    # Refused before training: nothing of the stage was written.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage.yaml"]
    # MLflow's own retries alone took 254 s here; what remains is starting Python, torch and the session.
    assert elapsed < 90, elapsed

    # The way out the line names works.
    done = subprocess.run([*TRAIN, "--config", str(config), "--stage", "consumers", "--out", str(out), "--no-progress",
                           "--set", "tracking.enabled=false"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert out.exists()


def stage_run(client):
    """The stage's MLflow run, once the stage has created it."""
    experiment = client.get_experiment_by_name("faults")
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], "tags.`dge.rule` = 'train:learned:consumers'")
    return runs[0] if runs else None


@pytest.mark.slow
def test_a_server_killed_and_restarted_while_a_stage_trains_loses_no_metric(tmp_path):
    from mlflow.tracking import MlflowClient

    server = MlflowServer(tmp_path / "server").start()
    episodes = 120
    config = stage_config(tmp_path, episodes=episodes, uri=server.uri)
    out = tmp_path / "consumers.pt"
    log = (tmp_path / "stage.log").open("w")
    stage = subprocess.Popen([*TRAIN, "--config", str(config), "--stage", "consumers", "--out", str(out),
                              "--no-progress"], stdout=log, stderr=subprocess.STDOUT)
    client = MlflowClient(tracking_uri=server.uri)
    try:
        deadline = time.monotonic() + 300
        while True:  # until the stage's run holds a few episodes' metrics
            run = stage_run(client)
            if run and len(client.get_metric_history(run.info.run_id, "reward/consumer")) >= 4:
                break
            assert stage.poll() is None and time.monotonic() < deadline, (tmp_path / "stage.log").read_text()
            time.sleep(0.5)
        server.kill()
        time.sleep(3)  # a few episodes with the server gone
        assert stage.poll() is None, "the stage must still be training while the server is away"
        server.start()
        assert stage.wait(timeout=600) == 0, (tmp_path / "stage.log").read_text()
        run = client.get_run(run.info.run_id)
        history = client.get_metric_history(run.info.run_id, "reward/consumer")
    finally:
        if stage.poll() is None:
            stage.kill()
        log.close()
        server.stop()
    assert run.info.status == "FINISHED"
    with out.with_suffix(".metrics.csv").open() as handle:
        rows = {int(r["episode"]): float(r["reward/consumer"]) for r in csv.DictReader(handle)}
    assert sorted(m.step for m in history) == list(range(episodes)), "every episode's metrics, each once"
    assert all(m.value == pytest.approx(rows[m.step], rel=1e-6) for m in history)
    text = (tmp_path / "stage.log").read_text()
    assert text.count(f"warning: MLflow server {server.uri} unreachable") == 1, text
    assert f"MLflow server {server.uri} is back" in text, text


def test_a_server_that_answers_but_refuses_the_run_is_one_line_naming_its_answer():
    """A server behind a proxy that allows /health but refuses the API (e.g. MLflow's "Invalid Host header"
    when --allowed-hosts leaves the job's name out): one line with the server's own words, no retries."""
    import http.server
    import threading

    from pipeline.config import TrackingConfig
    from pipeline.tracking import Tracker

    class Guarded(http.server.BaseHTTPRequestHandler):
        def answer(self):
            ok = self.path.startswith("/health")
            body = b"OK" if ok else b"Invalid Host header - possible DNS rebinding attack detected"
            self.send_response(200 if ok else 403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Guarded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        began = time.monotonic()
        with pytest.raises(TrackingUnavailable) as err:
            Tracker(TrackingConfig(uri=uri, experiment="faults", pipeline="faults/seed0"), rule="r").start()
        elapsed = time.monotonic() - began
    finally:
        server.shutdown()
    line = str(err.value)
    assert line.startswith(f"MLflow tracking server {uri} refused to start a run (") and "\n" not in line
    assert "Invalid Host header" in line and "--set tracking.enabled=false" in line
    assert elapsed < 30, elapsed
