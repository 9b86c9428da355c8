"""A collapsed fixed-tax branch stops, and later stages pass its checkpoint through unchanged."""

from __future__ import annotations

import torch

from pipeline.learning.checkpoint import load_checkpoint
from pipeline.learning.collapse import CollapseWatch
from pipeline.learning.session import Variant
from pipeline.learning.train import run_stage

from pipeline_support import small_config


def test_the_watch_needs_a_whole_window_below_the_threshold():
    watch = CollapseWatch(window=3, production_below=1.0)
    assert [watch.observe(p) for p in (0.5, 0.2, 1.5, 0.1, 0.0, 0.9)] == [False, False, False, False, False, True]
    assert not CollapseWatch(window=3, production_below=1.0, enabled=False).observe(0.0)
    replayed = CollapseWatch(window=3, production_below=1.0)
    replayed.replay([{"economy/production": 0.1}, {"other": 1.0}, {"economy/production": 0.2}])
    assert replayed.observe(0.3)  # two replayed rows and this one


def run(config, stage, out, init=None, variant=Variant(fixed_tax=0.4)):
    run_stage(config, stage, out, init, variant, progress=False)
    return load_checkpoint(out)


def test_a_collapsed_fixed_tax_branch_stops_and_is_passed_through(tmp_path):
    """A threshold no economy reaches makes every episode a collapsed one: the taxes stage stops after exactly
    `collapse_window` episodes and the government stage hands the same networks on at the same episode."""
    config = small_config(training={"collapse_window": 2, "collapse_production": 1e12})
    run(config, "consumers", tmp_path / "consumers.pt", variant=Variant())  # the prefix trains no government
    prefix = run(config, "firms", tmp_path / "firms.pt", tmp_path / "consumers.pt", variant=Variant())
    assert "collapsed_at" not in prefix
    start = prefix["session"]["episode"]
    taxes = run(config, "taxes", tmp_path / "taxes.pt", tmp_path / "firms.pt")
    assert taxes["collapsed_at"] == start + 2 and taxes["session"]["episode"] == start + 2
    assert (tmp_path / "taxes.metrics.csv").read_text().count("\n") == 3  # header + 2 episodes
    government = run(config, "government", tmp_path / "government.pt", tmp_path / "taxes.pt")
    assert government["collapsed_at"] == start + 2 and government["session"]["episode"] == start + 2
    for group, state in taxes["session"]["networks"].items():
        for name, value in state.items():
            assert torch.equal(value, government["session"]["networks"][group][name]), (group, name)
    # a learned government is never stopped, and a threshold of 0 stops nobody
    learned = run(config, "taxes", tmp_path / "learned.pt", tmp_path / "firms.pt", variant=Variant())
    assert "collapsed_at" not in learned and learned["session"]["episode"] == start + 5
    never = small_config(training={"collapse_window": 2, "collapse_production": 0.0})
    run(never, "consumers", tmp_path / "n1.pt", variant=Variant())
    run(never, "firms", tmp_path / "n2.pt", tmp_path / "n1.pt", variant=Variant())
    assert "collapsed_at" not in run(never, "taxes", tmp_path / "never.pt", tmp_path / "n2.pt")
