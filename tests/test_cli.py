"""The command-line entry points on a small four-stage pipeline: training stage by stage, resuming
after an interruption, clear errors (exit code 2), evaluation and best-response outputs."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipeline.analysis import best_response, evaluate
from pipeline.learning import train
from pipeline.learning.checkpoint import load_checkpoint
from pipeline.learning.metrics import mean_ci95

from pipeline_support import SMALL_PIPELINE, small_config_dict, write_config

ROOT = Path(__file__).resolve().parents[1]
STAGES = [(s["name"], s["episodes"]) for s in SMALL_PIPELINE["curriculum"]["stages"]]


def run_module(module: str, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Every stage of the small pipeline in turn, the first one through a real `python -m` process."""
    root = tmp_path_factory.mktemp("pipeline")
    config = write_config(root / "small.yaml", SMALL_PIPELINE)
    outs = {}
    previous = None
    for i, (stage, _) in enumerate(STAGES):
        out = root / f"{stage}.pt"
        args = ["--config", str(config), "--stage", stage, "--out", str(out), "--no-progress"]
        if previous is not None:
            args += ["--init", str(previous)]
        if i == 0:
            done = run_module("pipeline.learning.train", *args, cwd=root)
            assert done.returncode == 0, done.stderr
        else:
            assert train.main(args) == 0
        outs[stage] = previous = out
    return root, config, outs


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_train_runs_every_stage_in_turn(pipeline):
    root, _, outs = pipeline
    end = 0
    for stage, episodes in STAGES:
        start, end = end, end + episodes
        payload = load_checkpoint(outs[stage])
        assert payload["stage"] == stage and payload["stage_complete"] is True
        assert payload["session"]["episode"] == end
        assert not Path(f"{outs[stage]}.resume").exists()
        rows = read_csv(outs[stage].with_suffix(".metrics.csv"))
        assert [int(r["episode"]) for r in rows] == list(range(start, end))
        trains = {g for g in ("consumer", "firm", "government") if float(rows[0][f"schedule/trains/{g}"]) == 1.0}
        expected = next(s["train"] for s in SMALL_PIPELINE["curriculum"]["stages"] if s["name"] == stage)
        assert trains == set(expected)
        assert all(float(r["reward/consumer"]) == float(r["reward/consumer"]) for r in rows)  # no NaN
    # the schedules ran on the global episode counter across stages
    firms = read_csv(outs["firms"].with_suffix(".metrics.csv"))
    assert all(int(r["schedule/firm_actions_allowed"]) == 30 for r in firms)
    taxes = read_csv(outs["taxes"].with_suffix(".metrics.csv"))
    assert [float(r["schedule/max_tax"]) for r in taxes] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    # each stage changed the networks of the types it trains, and only those
    nets = {stage: load_checkpoint(outs[stage])["session"]["networks"] for stage, _ in STAGES}

    def same(a, b, group):
        return all(torch.equal(v, nets[b][group][k]) for k, v in nets[a][group].items())

    assert not same("consumers", "firms", "firm") and same("consumers", "taxes", "government")
    assert not same("taxes", "government", "government")


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_train_resumes_after_a_real_interrupt(tmp_path, stop):
    """Stop a training process mid-stage (Ctrl-C, a scheduler's SIGTERM, or kill -9 where nothing can be said),
    restart it, and get what an uninterrupted run gives."""
    data = small_config_dict(training={"num_envs": 4, "checkpoint_every": 1, "threads": 1})
    data["curriculum"]["stages"][0]["episodes"] = 40
    config = write_config(tmp_path / "c.yaml", data)
    out = tmp_path / "split.pt"
    args = ["--config", str(config), "--stage", "consumers", "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # A test runner started in the background (`cmd &` in a script) passes SIGINT on as ignored,
    # and Python then installs no KeyboardInterrupt handler: restore what a terminal would give.
    process = subprocess.Popen([sys.executable, "-m", "pipeline.learning.train", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    resume = Path(f"{out}.resume")
    deadline = time.monotonic() + 90
    while not resume.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == (-9 if stop == signal.SIGKILL else 130), "it finished before it was stopped"
    assert not out.exists()
    stopped_at = load_checkpoint(resume)["session"]["episode"]
    assert 0 < stopped_at < 40
    # one line: where it stopped and how to continue (kill -9 leaves no chance to say anything)
    reason = "interrupted" if stop == signal.SIGINT else f"stopped by signal {int(stop)}"
    if stop != signal.SIGKILL:
        assert re.fullmatch(rf"{reason} at episode \d+ of stage 'consumers': run the same command again to resume "
                            rf"from {re.escape(str(resume))} \(episode {stopped_at}\)", stderr.strip()), stderr
    # Until the stage completes its rows live under an undeclared name, which Snakemake's cleanup of an
    # interrupted job's declared outputs (checkpoint and metrics CSV) leaves alone.
    metrics = out.with_suffix(".metrics.csv")
    assert not metrics.exists() and Path(f"{metrics}.partial").exists()

    assert train.main(args) == 0  # the restart picks up the resume checkpoint
    assert not Path(f"{metrics}.partial").exists()
    assert not resume.exists()
    whole = tmp_path / "whole.pt"
    assert train.main(["--config", str(config), "--stage", "consumers", "--out", str(whole), "--no-progress"]) == 0
    a, b = load_checkpoint(whole)["session"], load_checkpoint(out)["session"]
    for group in a["networks"]:
        for name, value in a["networks"][group].items():
            assert torch.equal(value, b["networks"][group][name]), (group, name)
    assert out.with_suffix(".metrics.csv").read_text() == whole.with_suffix(".metrics.csv").read_text()


def test_bad_config_value_exits_2_naming_the_key(tmp_path):
    config = write_config(tmp_path / "c.yaml", SMALL_PIPELINE)
    done = run_module("pipeline.learning.train", "--config", str(config), "--stage", "consumers", "--out",
                      str(tmp_path / "x.pt"), "--set", "training.ppo_epochs=0", cwd=tmp_path)
    assert done.returncode == 2
    assert "training.ppo_epochs" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("override, says", [
    pytest.param("training.device=cuda", "invalid config: training.device='cuda' (this torch was built without CUDA",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has a CUDA device")),
    ("policy.factory=builtins:len", "invalid config: policy.factory='builtins:len' (it cannot be called with "
                                    "(layout, options): too many positional arguments)"),
    ("policy.factory=builtins:dict", "invalid config: policy.factory='builtins:dict' (the class dict does not make"),
])
def test_settings_torch_cannot_run_exit_2_in_one_line(tmp_path, override, says):
    """They used to end in an AssertionError or TypeError traceback from inside torch or the network builder."""
    config = write_config(tmp_path / "c.yaml", SMALL_PIPELINE)
    done = run_module("pipeline.learning.train", "--config", str(config), "--stage", "consumers", "--out",
                      str(tmp_path / "x.pt"), "--set", override, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {says}"), done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["training.num_envs=0"], "training.num_envs"),
        (["economy.n_firms=two"], "n_firms"),
        (["curriculum.stages.1.train=[consumer, bank]"], "curriculum.stages.1.train"),
        (["training.learning_rate.firm=-1"], "training.learning_rate.firm"),
        (["training.num_env=4"], "training.num_env"),
        (["policy.factory=nosuchpackage.nets:build"], "policy.factory"),
        (["curriculum.stages.9.episodes=3"], "curriculum.stages.9.episodes"),
    ],
)
def test_bad_values_exit_2_in_process(tmp_path, capsys, overrides, key):
    config = write_config(tmp_path / "c.yaml", SMALL_PIPELINE)
    args = ["--config", str(config), "--stage", "consumers", "--out", str(tmp_path / "x.pt"), "--no-progress"]
    for item in overrides:
        args += ["--set", item]
    assert train.main(args) == 2
    assert key in capsys.readouterr().err


def test_fixed_tax_off_the_grid_exits_2(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", SMALL_PIPELINE)
    args = ["--config", str(config), "--stage", "consumers", "--out", str(tmp_path / "x.pt"), "--no-progress",
            "--fixed-tax", "0.3"]
    assert train.main(args) == 2
    assert "--fixed-tax" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--max-corporate-tax", "1.5"], ["--max-corporate-tax", "0.5", "--fixed-tax", "0.2"]])
def test_bad_corporate_cap_exits_2(tmp_path, capsys, flags):
    config = write_config(tmp_path / "c.yaml", SMALL_PIPELINE)
    args = ["--config", str(config), "--stage", "consumers", "--out", str(tmp_path / "x.pt"), "--no-progress", *flags]
    assert train.main(args) == 2
    assert "--max-corporate-tax" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_later_stage_without_init_exits_2(pipeline, tmp_path, capsys):
    _, config, _ = pipeline
    args = ["--config", str(config), "--stage", "firms", "--out", str(tmp_path / "firms.pt"), "--no-progress"]
    assert train.main(args) == 2
    err = capsys.readouterr().err
    assert "stage 'firms' starts at episode 8" in err and "--init" in err
    assert train.main([*args[:3], "nosuchstage", *args[4:]]) == 2
    assert "unknown stage 'nosuchstage'" in capsys.readouterr().err


def test_init_from_another_config_or_stage_exits_2(pipeline, tmp_path, capsys):
    _, config, outs = pipeline
    args = ["--config", str(config), "--stage", "firms", "--out", str(tmp_path / "firms.pt"), "--no-progress"]
    assert train.main([*args, "--init", str(outs["consumers"]), "--set", "economy.n_consumers=6"]) == 2
    assert "economy.n_consumers: checkpoint 5 != current 6" in capsys.readouterr().err
    assert train.main([*args, "--init", str(outs["taxes"])]) == 2  # ends at 19, firms start at 8
    assert "ends at episode 19" in capsys.readouterr().err
    assert train.main([*args, "--init", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "firms.pt").exists()


def test_evaluate_writes_a_summary(pipeline, tmp_path, capsys):
    _, config, outs = pipeline
    out = tmp_path / "eval" / "summary.json"
    assert evaluate.main(["--config", str(config), "--ckpt", str(outs["government"]), "--out", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["episode"] == 24
    assert summary["samples"] == SMALL_PIPELINE["evaluation"]["episodes"] * SMALL_PIPELINE["evaluation"]["num_envs"]
    for key in ("reward/consumer", "reward/firm", "welfare/total", "economy/price", "economy/hours"):
        m, samples = summary["metrics"][key], summary["economy_samples"][key]
        assert m["n"] == len(samples) == summary["samples"], key
        assert m["mean"] == pytest.approx(sum(samples) / len(samples)), key  # the mean of the samples written
        assert m["ci95"] == pytest.approx(mean_ci95(samples)["ci95"]), key  # the interval of those same samples
    assert len(summary["per_firm"]["price"]) == 2
    assert len(summary["trajectory"]["firm"]["price"]) == 10  # one episode of 10 steps
    assert "welfare(total)" in capsys.readouterr().out
    # another config's checkpoint is refused
    assert evaluate.main(["--config", str(config), "--ckpt", str(outs["government"]), "--out", str(out),
                          "--set", "economy.n_firms=3"]) == 2


def test_best_response_writes_its_result_and_curve(pipeline, tmp_path):
    _, config, outs = pipeline
    out = tmp_path / "br"
    assert best_response.main(["--config", str(config), "--ckpt", str(outs["government"]), "--type", "firm",
                               "--out", str(out), "--episodes", "3", "--no-progress"]) == 0
    result = json.loads((out / "best_response.json").read_text())
    assert result["type"] == "firm" and result["episodes"] == 3 and result["metric"] == "reward/firm"
    # paired gains: after minus before, trained minus untrained, each over the same 2 episodes x 4 economies
    assert result["gain"]["mean"] == pytest.approx(result["after"]["mean"] - result["before"]["mean"])
    assert result["gain"]["n"] == result["before"]["n"] == result["after"]["n"] == 2 * 4
    assert result["training_gain_vs_untrained"]["mean"] == pytest.approx(
        result["trained"]["mean"] - result["untrained"]["mean"])
    assert result["before"] == result["trained"] and result["start"] == "trained" and result["agent"] is None
    assert result["selected_episode"] == 3  # without selection the search's last policy is the one measured
    curve = read_csv(out / "curve.csv")
    assert [int(r["episode"]) for r in curve] == [0, 1, 2]
    assert all("loss/firm/objective" in r and "loss/consumer/objective" not in r for r in curve)


def test_best_response_refuses_a_fixed_type(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", SMALL_PIPELINE)
    ckpt = tmp_path / "fixed.pt"
    assert train.main(["--config", str(config), "--stage", "consumers", "--out", str(ckpt), "--no-progress",
                       "--fixed-tax", "0.2"]) == 0
    assert best_response.main(["--config", str(config), "--ckpt", str(ckpt), "--type", "government",
                               "--out", str(tmp_path / "br"), "--episodes", "2", "--no-progress"]) == 2
    assert "fixed policy" in capsys.readouterr().err
