"""A stage stopped part-way and started again: after a config change, with damaged files beside it, after
Ctrl-C, and when training diverges. Every case either continues or ends in one line saying what to do,
and no finished work is lost."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from pipeline.learning import train
from pipeline.learning.checkpoint import load_checkpoint
from pipeline.learning.session import Session

from pipeline_support import small_config_dict, write_config


def stage_args(config: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(config), "--stage", "consumers", "--out", str(out), "--no-progress", *extra]


def stop_at(monkeypatch, episode: int) -> None:
    """Make the next stage run stop as Ctrl-C would, when the session reaches `episode`."""
    run_episode = Session.run_episode

    def interrupted(self, plan, *args, **kwargs):
        if self.episode == episode:
            raise KeyboardInterrupt
        return run_episode(self, plan, *args, **kwargs)

    monkeypatch.setattr(Session, "run_episode", interrupted)


@pytest.fixture
def interrupted_stage(tmp_path, monkeypatch, capsys):
    """The first stage (8 episodes, a resume checkpoint every 3) stopped at episode 5: resume file at 3."""
    config = write_config(tmp_path / "c.yaml", small_config_dict())
    out = tmp_path / "run" / "consumers.pt"
    stop_at(monkeypatch, 5)
    assert train.main(stage_args(config, out)) == 130
    monkeypatch.undo()
    capsys.readouterr()
    resume = Path(f"{out}.resume")
    assert load_checkpoint(resume)["session"]["episode"] == 3
    return config, out, resume


def networks_equal(a: Path, b: Path) -> bool:
    x, y = load_checkpoint(a)["session"]["networks"], load_checkpoint(b)["session"]["networks"]
    return all(torch.equal(v, y[g][k]) for g in x for k, v in x[g].items())


def test_a_changed_config_starts_the_stage_fresh_and_keeps_the_old_resume_file(tmp_path, interrupted_stage, capsys):
    config, out, resume = interrupted_stage
    old_resume = resume.read_bytes()
    partial = Path(f"{out.with_suffix('.metrics.csv')}.partial")
    old_rows = partial.read_text()
    changed = ["--set", "training.learning_rate.consumer=0.003"]
    assert train.main(stage_args(config, out, *changed)) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    moved = [line for line in lines if "config changed" in line]
    assert len(moved) == 1, lines
    assert "training.learning_rate.consumer: checkpoint 0.001 != current 0.003" in moved[0]
    stale = sorted(out.parent.glob("consumers.pt.resume.stale-*"))
    assert len(stale) == 1 and stale[0].read_bytes() == old_resume and str(stale[0]) in moved[0]
    assert [p.read_text() for p in out.parent.glob("consumers.metrics.csv.partial.stale-*")] == [old_rows]
    assert not resume.exists() and not partial.exists()
    # started fresh: the same as an uninterrupted run with the new config
    fresh = tmp_path / "fresh" / "consumers.pt"
    assert train.main(stage_args(config, fresh, *changed)) == 0
    assert networks_equal(out, fresh)
    assert out.with_suffix(".metrics.csv").read_text() == fresh.with_suffix(".metrics.csv").read_text()


def test_ctrl_c_says_where_the_stage_stopped_and_how_to_resume(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path / "c.yaml", small_config_dict())
    out = tmp_path / "consumers.pt"
    stop_at(monkeypatch, 5)
    assert train.main(stage_args(config, out)) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        f"interrupted at episode 5 of stage 'consumers': run the same command again to resume from {out}.resume "
        "(episode 3)"]
    stop_at(monkeypatch, 1)
    other = tmp_path / "other.pt"
    assert train.main(stage_args(config, other)) == 130
    assert capsys.readouterr().err.strip() == ("interrupted at episode 1 of stage 'consumers', before its first resume "
                                               "checkpoint: run the same command again to start the stage over")
    monkeypatch.undo()
    assert train.main(stage_args(config, out)) == 0
    assert capsys.readouterr().err.strip() == f"resuming stage 'consumers' at episode 3 from {out}.resume"


def test_a_damaged_resume_checkpoint_is_refused_with_what_to_do(interrupted_stage, capsys):
    config, out, resume = interrupted_stage
    resume.write_bytes(resume.read_bytes()[:1000])
    assert train.main(stage_args(config, out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: checkpoint {resume} cannot be read")
    assert err.endswith("move it away to run stage 'consumers' from its beginning")
    assert not out.exists()


def cut(path: Path, row: int) -> None:
    """Cut a CSV file in the middle of its data row `row` (0-based), as a copy cut short would."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: row + 1]) + lines[row + 1][: len(lines[row + 1]) // 2])


def test_metrics_damaged_after_the_resume_point_are_recovered(tmp_path, interrupted_stage, capsys):
    config, out, _ = interrupted_stage
    whole = tmp_path / "whole" / "consumers.pt"
    assert train.main(stage_args(config, whole)) == 0
    # rows 0..4 complete and row 5 cut: the resume checkpoint (episode 3) needs only rows 0..2
    partial = Path(f"{out.with_suffix('.metrics.csv')}.partial")
    partial.write_text(whole.with_suffix(".metrics.csv").read_text())
    cut(partial, 5)
    assert train.main(stage_args(config, out)) == 0
    assert f"metrics file {partial} was damaged after episode 2: kept its 3 complete rows" in capsys.readouterr().err
    assert out.with_suffix(".metrics.csv").read_text() == whole.with_suffix(".metrics.csv").read_text()


def test_metrics_damaged_before_the_resume_point_are_refused_with_what_to_do(interrupted_stage, capsys):
    config, out, resume = interrupted_stage
    partial = Path(f"{out.with_suffix('.metrics.csv')}.partial")
    cut(partial, 1)
    assert train.main(stage_args(config, out)) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: metrics file {partial} is damaged and lacks the rows of episodes 1-2, which {resume} has "
                   "already trained; move both away to run stage 'consumers' from its beginning")


def test_a_huge_learning_rate_stops_the_stage_naming_the_type_and_episode(tmp_path, capsys):
    """With the default profile's consumer network, a rate of 1e6 makes the gradient norm infinite at once."""
    data = small_config_dict(policy={"factory": "pipeline.learning.equivariant:build"})
    config = write_config(tmp_path / "c.yaml", data)
    out = tmp_path / "consumers.pt"
    assert train.main(stage_args(config, out, "--set", "training.learning_rate.consumer=1.0e+6")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.fullmatch(r"error: training diverged at episode 0 of stage 'consumers': the consumer loss or gradient "
                        r"is not finite \(loss \S+, gradient norm (inf|nan)\); no resume checkpoint was written yet; "
                        r"lower training.learning_rate.consumer \(now 1e\+06\) or training.max_grad_norm and run again",
                        err), err
    assert not out.exists() and not Path(f"{out}.resume").exists()


def test_divergence_keeps_the_last_good_resume_checkpoint(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path / "c.yaml", small_config_dict())
    out, clean = tmp_path / "consumers.pt", tmp_path / "clean.pt"
    stop_at(monkeypatch, 5)
    assert train.main(stage_args(config, clean)) == 130  # the resume checkpoint of an undisturbed run
    monkeypatch.undo()
    run_episode = Session.run_episode

    def poisoned(self, plan, *args, **kwargs):
        if self.episode == 4:
            self.learners["consumer"].reward_scale = 0.0  # rewards / 0: the loss is no longer a number
        return run_episode(self, plan, *args, **kwargs)

    monkeypatch.setattr(Session, "run_episode", poisoned)
    assert train.main(stage_args(config, out)) == 2
    err = capsys.readouterr().err
    assert "error: training diverged at episode 4 of stage 'consumers': the consumer loss or gradient" in err
    assert f"the resume checkpoint {out}.resume (episode 3) is kept" in err
    assert networks_equal(Path(f"{out}.resume"), Path(f"{clean}.resume"))  # loads: finite, hash intact
    monkeypatch.undo()
    assert train.main(stage_args(config, out)) == 0
