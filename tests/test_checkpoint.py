"""Checkpoints: atomic writes, weights-only loading, and clear refusals of files that do not fit."""

from __future__ import annotations

import pickle
import re

import pytest
import torch

from pipeline.learning import checkpoint as ckpt_module
from pipeline.learning.checkpoint import CheckpointError, check_compatible, load_checkpoint, save_checkpoint
from pipeline.learning.session import Session
from pipeline.learning.train import run_stage

from pipeline_support import small_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real checkpoint from a short first stage (networks, Adam state, RNG state)."""
    config = small_config()
    out = tmp_path_factory.mktemp("ckpt") / "consumers.pt"
    run_stage(config, "consumers", out, progress=False)
    return config, out


def _payload(session: Session, config) -> dict:
    return {"config": config.to_dict(), "stage": "consumers", "stage_complete": True, "session": session.state_dict()}


def test_saved_checkpoint_loads_with_torch_weights_only(trained):
    config, path = trained
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["stage"] == "consumers" and raw["stage_complete"] is True
    assert raw["session"]["episode"] == 8
    assert set(raw["session"]["networks"]) == {"consumer", "firm", "government"}
    assert raw["session"]["optimizers"]["consumer"]["state"]  # Adam moments of the trained type
    # and the session state round-trips into a fresh session
    session = Session(config)
    session.load_state_dict(load_checkpoint(path)["session"])
    for group, state in raw["session"]["networks"].items():
        for name, value in session.policies[group].network.state_dict().items():
            assert torch.equal(value, state[name])
    assert torch.equal(torch.get_rng_state(), raw["session"]["rng"])


def test_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch, trained):
    config, _ = trained
    session = Session(config)
    path = tmp_path / "stage.pt"
    save_checkpoint(_payload(session, config), path)
    original = path.read_bytes()

    real_save = torch.save

    def save_half_then_fail(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        handle.truncate(100)  # a partial file, then the process "dies"
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.torch, "save", save_half_then_fail)
    session.episode = 99
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_payload(session, config), path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert load_checkpoint(path)["session"]["episode"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["stage.pt"]  # no temporary file left behind

    # an interruption during the save behaves the same
    def interrupted(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_module.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_payload(session, config), path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["stage.pt"]


def test_truncated_checkpoint_is_refused_clearly(tmp_path, trained):
    _, path = trained
    data = path.read_bytes()
    for cut in (len(data) // 2, 10, 0):
        broken = tmp_path / f"cut{cut}.pt"
        broken.write_bytes(data[:cut])
        message = r"cannot be read \(truncated, damaged or not a dge-marl checkpoint\)"
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(broken)


def test_files_that_are_not_checkpoints_are_refused(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("economy: {n_consumers: 5}\n")
    with pytest.raises(CheckpointError, match="notes.pt cannot be read"):
        load_checkpoint(text)

    tensors = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(3)}, tensors)  # loadable, but not ours
    with pytest.raises(CheckpointError, match="weights.pt is not a dge-marl checkpoint"):
        load_checkpoint(tensors)

    class Payload:  # arbitrary pickled objects would run code on load: refused, not executed
        def __reduce__(self):
            return (print, ("this must never run",))

    evil = tmp_path / "evil.pt"
    with evil.open("wb") as handle:
        pickle.dump({"format": ckpt_module.FORMAT, "x": Payload()}, handle, protocol=2)
    with pytest.raises(CheckpointError, match="evil.pt cannot be read"):
        load_checkpoint(evil)
    assert "this must never run" not in capsys.readouterr().out

    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_from_another_config_names_the_differing_key(trained):
    _, path = trained
    payload = load_checkpoint(path)
    other = small_config(economy={"n_consumers": 6, "n_firms": 2})
    with pytest.raises(CheckpointError, match=r"economy\.n_consumers: checkpoint 5 != current 6"):
        check_compatible(payload, other, path)
    lr = small_config(training={"learning_rate": {"consumer": 0.002}})
    with pytest.raises(CheckpointError, match=r"training\.learning_rate\.consumer"):
        check_compatible(payload, lr, path)
    stage = small_config()
    stage.curriculum.stages[1].episodes = 7
    with pytest.raises(CheckpointError, match=r"curriculum\.stages\.1\.episodes"):
        check_compatible(payload, stage, path)
    # bookkeeping may differ
    free = small_config(training={"checkpoint_every": 50, "threads": 2}, tracking={"enabled": True})
    check_compatible(payload, free, path)


def test_loaded_optimizers_take_the_learning_rates_of_the_running_config(trained):
    """Adam's saved param groups carry their old learning rate; the config that runs now decides it."""
    config, path = trained
    state = load_checkpoint(path)["session"]
    faster = small_config(training={"learning_rate": {"consumer": 0.0123, "firm": 0.0045, "government": 0.0006}})
    session = Session(faster)
    session.load_state_dict(state)
    for group, rate in faster.training.learning_rate.items():
        assert [g["lr"] for g in session.learners[group].optimizer.param_groups] == [rate], group
    saved = state["optimizers"]["consumer"]["state"]  # the consumers trained in this stage: Adam has moments
    loaded = session.learners["consumer"].optimizer.state_dict()["state"]
    assert saved and saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k]["exp_avg_sq"], loaded[k]["exp_avg_sq"]) for k in saved)


# ---------------------------------------------------------------------------------------- damaged contents
def _flip_inside(path, tensor: torch.Tensor, out) -> None:
    """Overwrite one byte in the middle of `tensor`'s stored bytes, found by searching the file for them."""
    data = bytearray(path.read_bytes())
    stored = tensor.contiguous().numpy().tobytes()
    at = data.find(stored)
    assert at > 0 and data.find(stored, at + 1) == -1, "the tensor's bytes are stored once, uncompressed"
    data[at + len(stored) // 2] ^= 0xFF
    out.write_bytes(bytes(data))


def test_bytes_overwritten_inside_a_tensor_are_refused_naming_the_file(tmp_path, trained):
    _, path = trained
    weight = torch.load(path, weights_only=True)["session"]["networks"]["consumer"]["private_in.weight"]
    damaged = tmp_path / "damaged.pt"
    _flip_inside(path, weight, damaged)
    # torch itself notices nothing: the file loads, with a different value
    silently = torch.load(damaged, weights_only=True)["session"]["networks"]["consumer"]["private_in.weight"]
    assert not torch.equal(silently, weight)
    with pytest.raises(CheckpointError, match=r"checkpoint .*damaged\.pt is damaged: its contents do not match"):
        load_checkpoint(damaged)


def test_checkpoints_without_a_content_hash_are_refused_unless_they_predate_it(tmp_path, trained):
    _, path = trained
    payload = torch.load(path, weights_only=True)
    payload.pop("sha256")
    stripped = tmp_path / "stripped.pt"
    torch.save(payload, stripped)
    with pytest.raises(CheckpointError, match="stripped.pt has no content hash"):
        load_checkpoint(stripped)
    # format 1 (before checkpoints carried a hash) still loads: runs started earlier resume
    legacy = tmp_path / "legacy.pt"
    torch.save({**payload, "format": ckpt_module.LEGACY_FORMAT}, legacy)
    assert load_checkpoint(legacy)["session"]["episode"] == payload["session"]["episode"]


@pytest.mark.parametrize("where", [("optimizers", "consumer", "state", 0, "exp_avg"),
                                   ("networks", "firm", "head.bias")])
def test_non_finite_state_is_refused_on_load_naming_the_entry(tmp_path, trained, where):
    _, path = trained
    payload = load_checkpoint(path)
    node = payload["session"]
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = node[where[-1]].clone()
    node[where[-1]].view(-1)[0] = float("nan")
    bad = tmp_path / "bad.pt"
    save_checkpoint({k: v for k, v in payload.items() if k not in ("format", "sha256")}, bad)  # a valid hash
    entry = ".".join(map(str, ("session", *where)))
    with pytest.raises(CheckpointError, match=rf"bad\.pt holds NaN or infinite values in {re.escape(entry)}"):
        load_checkpoint(bad)
