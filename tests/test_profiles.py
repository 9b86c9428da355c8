"""Workflow profiles given to the command-line tools: resolved as the workflow resolves them for its rules.

The reference is what the workflow itself hands a rule: the plan's resolved experiment
(`WorkflowPlan(...).config_text`, the text of `results/<profile>/<economy>/seed<N>/config/<kind>.yaml`),
built over a profile merged with the tests' own implementation of Snakemake's --configfile merge.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from test_workflow import DEFAULT, SMOKE, merged

from pipeline.analysis import best_response, evaluate
from pipeline.config import ExperimentConfig
from pipeline.learning import train
from pipeline.learning.checkpoint import load_checkpoint
from pipeline.orchestration.plan import CONFIG_KINDS, WorkflowPlan
from pipeline.profiles import load_experiment

NO_TRACKING = ["--set", "tracking.enabled=false", "--no-progress"]


def workflow_file(tmp_path, kind: str, profile=SMOKE, economy: str = "open", seed: int = 0):
    """The resolved config file the workflow writes for a rule of `kind`."""
    files = [DEFAULT] if profile == DEFAULT else [DEFAULT, profile]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(WorkflowPlan(merged(*files)).config_text(economy, seed, kind))
    return path


@pytest.mark.parametrize("kind", CONFIG_KINDS)
@pytest.mark.parametrize("profile, economy, seed", [(SMOKE, "open", 3), (DEFAULT, "closed", 1)])
def test_a_profile_resolves_to_the_workflows_file_for_every_kind(tmp_path, kind, profile, economy, seed):
    ours = load_experiment(profile, economy=economy, seed=seed, kind=kind)
    assert ours == ExperimentConfig.load(workflow_file(tmp_path, kind, profile, economy, seed))


def test_train_evaluate_and_best_response_take_a_profile(tmp_path, monkeypatch):
    """Each tool run on the profile gives what it gives on the workflow's resolved file, bit for bit."""
    monkeypatch.chdir(tmp_path)
    profile = ["--config", str(SMOKE), "--economy", "open", "--seed", "0"]
    outputs = {}
    for way in ("profile", "file"):
        config = lambda kind: profile if way == "profile" else ["--config", str(workflow_file(tmp_path, kind))]  # noqa: E731
        ckpt = tmp_path / f"{way}.pt"
        assert train.main([*config("train"), "--stage", "consumers", "--out", str(ckpt), *NO_TRACKING]) == 0
        summary = tmp_path / f"{way}-evaluation.json"
        assert evaluate.main([*config("evaluate"), "--ckpt", str(ckpt), "--out", str(summary),
                              "--set", "tracking.enabled=false"]) == 0
        br = tmp_path / f"{way}-br"
        assert best_response.main([*config("best_response"), "--ckpt", str(ckpt), "--type", "firm", "--out", str(br),
                                   *NO_TRACKING]) == 0
        outputs[way] = (load_checkpoint(ckpt), json.loads(summary.read_text()),
                        json.loads((br / "best_response.json").read_text()))
    (ckpt_a, eval_a, br_a), (ckpt_b, eval_b, br_b) = outputs["profile"], outputs["file"]
    assert ckpt_a["config"] == ckpt_b["config"]
    weights_a = ckpt_a["session"]["networks"]["consumer"]
    weights_b = ckpt_b["session"]["networks"]["consumer"]
    assert weights_a.keys() == weights_b.keys() and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert eval_a["metrics"] == eval_b["metrics"]
    assert br_a["gain"] == br_b["gain"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", str(DEFAULT)], "--economy is required with profile"),
        (["--config", str(DEFAULT), "--economy", "mars"], "--economy='mars'; allowed: open | closed"),
        (["--config", str(SMOKE), "--economy", "open", "--seed", "-1"], "--seed=-1; allowed: an integer >= 0"),
    ],
)
def test_a_profile_without_a_usable_economy_or_seed_exits_2(tmp_path, capsys, args, message):
    assert train.main([*args, "--stage", "consumers", "--out", str(tmp_path / "x.pt"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_economy_or_seed_with_an_experiment_config_exits_2(tmp_path, capsys):
    resolved = workflow_file(tmp_path, "train")
    args = ["--config", str(resolved), "--seed", "1", "--stage", "consumers", "--out", str(tmp_path / "x.pt")]
    assert train.main(args) == 2
    assert "select from a workflow profile" in capsys.readouterr().err


def test_a_bad_profile_value_is_named_as_the_profile_spells_it(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"profile": "bad", "experiment": {"training": {"ppo_epochs": 0}}}))
    args = ["--config", str(bad), "--economy", "open", "--stage", "consumers", "--out", str(tmp_path / "x.pt")]
    assert train.main(args) == 2
    assert "experiment.training.ppo_epochs=0" in capsys.readouterr().err
