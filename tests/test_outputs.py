"""Outputs that cannot be written: the tools find out before any training, and a disk that fills up during a
save ends the run with one line and the previous file whole. Interrupts of evaluate and best_response say
what to do."""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.analysis import best_response, evaluate
from pipeline.learning import checkpoint as ckpt_module
from pipeline.learning import train
from pipeline.learning.checkpoint import load_checkpoint
from pipeline.learning.session import Session

from pipeline_support import small_config_dict, write_config


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may create files in: immutable for root (who ignores permissions), mode 555 otherwise."""
    path = tmp_path / "read-only"
    path.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
            pytest.skip("running as root without chattr +i: no way to make a directory read-only here")
    else:
        path.chmod(0o555)
    try:
        (path / "probe").write_text("")
        pytest.skip("the directory stayed writable")
    except OSError:
        pass
    yield path
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o755)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any episode runs: the checks must come first."""
    def refuse(self, plan, *args, **kwargs):
        raise AssertionError("an episode ran before the output was checked")

    monkeypatch.setattr(Session, "run_episode", refuse)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    config = write_config(root / "c.yaml", small_config_dict())
    ckpt = root / "consumers.pt"
    assert train.main(["--config", str(config), "--stage", "consumers", "--out", str(ckpt), "--no-progress"]) == 0
    return config, ckpt


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_read_only_output_is_refused_before_training(read_only_dir, trained, no_training, capsys):
    config, ckpt = trained
    out = read_only_dir / "consumers.pt"
    assert train.main(["--config", str(config), "--stage", "consumers", "--out", str(out), "--no-progress"]) == 2
    assert one_line(capsys).startswith(f"error: cannot write {out}: ")
    out = read_only_dir / "br"
    assert best_response.main(["--config", str(config), "--ckpt", str(ckpt), "--type", "consumer", "--out", str(out),
                               "--no-progress"]) == 2
    assert one_line(capsys).startswith(f"error: cannot write {out / 'best_response.json'}: ")


def test_read_only_evaluation_output_is_refused_before_evaluating(read_only_dir, trained, monkeypatch, capsys):
    config, ckpt = trained
    monkeypatch.setattr(evaluate, "evaluate_session", lambda *a, **k: pytest.fail("evaluated before the check"))
    out = read_only_dir / "evaluation.json"
    assert evaluate.main(["--config", str(config), "--ckpt", str(ckpt), "--out", str(out)]) == 2
    assert one_line(capsys).startswith(f"error: cannot write {out}: ")


def test_too_little_free_space_is_refused_before_training(tmp_path, trained, no_training, monkeypatch, capsys):
    config, _ = trained
    free = shutil.disk_usage(tmp_path)._replace(free=1000)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: free)
    out = tmp_path / "consumers.pt"
    assert train.main(["--config", str(config), "--stage", "consumers", "--out", str(out), "--no-progress"]) == 2
    assert one_line(capsys).startswith(f"error: cannot write {out}: 0.0 MB free in {tmp_path}, this run writes about ")


def test_a_disk_that_fills_during_a_save_ends_in_one_line_with_the_last_checkpoint_whole(tmp_path, trained,
                                                                                         monkeypatch, capsys):
    config, _ = trained
    out = tmp_path / "consumers.pt"
    real_save, saves = ckpt_module.torch.save, []

    def fills_up(obj, handle, *args, **kwargs):
        if isinstance(handle, io.BytesIO):  # measuring a checkpoint's size, not saving it
            return real_save(obj, handle, *args, **kwargs)
        saves.append(obj["session"]["episode"])
        if len(saves) == 2:  # the second resume checkpoint, at episode 6
            handle.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(ckpt_module.torch, "save", fills_up)
    assert train.main(["--config", str(config), "--stage", "consumers", "--out", str(out), "--no-progress"]) == 2
    assert one_line(capsys) == (f"error: cannot write {out}.resume: No space left on device; free some space (or "
                                "choose another output path) and run the same command again")
    assert saves == [3, 6]
    assert load_checkpoint(f"{out}.resume")["session"]["episode"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["consumers.metrics.csv.partial", "consumers.pt.resume"]


def test_interrupted_evaluation_and_best_response_say_what_to_do(tmp_path, trained, monkeypatch, capsys):
    config, ckpt = trained

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "evaluate_session", ctrl_c)
    out = tmp_path / "evaluation.json"
    assert evaluate.main(["--config", str(config), "--ckpt", str(ckpt), "--out", str(out)]) == 130
    assert one_line(capsys) == (f"interrupted: evaluation of {ckpt} stopped before it finished; run the same command "
                                "again (an evaluation starts over)")
    assert not out.exists()
    monkeypatch.undo()
    run_episode = Session.run_episode

    def stop_at_third(self, plan, *args, **kwargs):
        if len(calls) == 2:  # best-response episodes run through run_episode; evaluations do not
            raise KeyboardInterrupt
        calls.append(plan.episode)
        return run_episode(self, plan, *args, **kwargs)

    calls: list[int] = []
    monkeypatch.setattr(Session, "run_episode", stop_at_third)
    out = tmp_path / "br"
    assert best_response.main(["--config", str(config), "--ckpt", str(ckpt), "--type", "firm", "--out", str(out),
                               "--episodes", "4", "--no-progress"]) == 130
    assert one_line(capsys) == ("interrupted at episode 2 of 4 of the firm best response; it keeps no resume "
                                "checkpoint: run the same command again to start it over")
    assert not (out / "best_response.json").exists()


@pytest.mark.parametrize("out, says", [("a-file/consumers.pt", "File exists (a-file)"),
                                       ("a-dir", "Is a directory")])
def test_an_output_path_through_a_file_or_onto_a_directory_is_refused_before_training(tmp_path, trained, no_training,
                                                                                      monkeypatch, capsys, out, says):
    config, _ = trained
    monkeypatch.chdir(tmp_path)
    Path("a-file").write_text("")
    Path("a-dir").mkdir()
    assert train.main(["--config", str(config), "--stage", "consumers", "--out", out, "--no-progress"]) == 2
    assert one_line(capsys) == (f"error: cannot write {out}: {says}; choose an output path whose directories are "
                                "directories and that is not one itself")


def test_a_diverging_best_response_stops_naming_the_type_and_episode(tmp_path, trained, monkeypatch, capsys):
    config, ckpt = trained
    run_episode, calls = Session.run_episode, []

    def poisoned(self, plan, *args, **kwargs):
        if len(calls) == 1:
            self.learners["firm"].reward_scale = 0.0  # rewards / 0: the loss is no longer a number
        calls.append(plan.episode)
        return run_episode(self, plan, *args, **kwargs)

    monkeypatch.setattr(Session, "run_episode", poisoned)
    out = tmp_path / "br"
    assert best_response.main(["--config", str(config), "--ckpt", str(ckpt), "--type", "firm", "--out", str(out),
                               "--episodes", "4", "--no-progress"]) == 2
    err = one_line(capsys)
    assert err.startswith("error: the firm best response diverged at its episode 1: the firm loss or gradient is not "
                          "finite"), err
    assert err.endswith("lower its learner's learning rate for firm (now 0.001, best_response) and run again")
    assert not (out / "best_response.json").exists()
