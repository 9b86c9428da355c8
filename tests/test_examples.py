"""examples/: the TorchRL MAPPO script trains RBCEnv with TorchRL's Collector and MAPPOLoss."""

from __future__ import annotations

import importlib.util
import math

from conftest import ROOT


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torchrl_mappo_example_trains_every_group_within_the_masks():
    example = load_example("torchrl_mappo")
    result = example.train(iterations=2, num_envs=4, epochs=2)
    history = result["history"]
    assert len(history) == 2
    # prices 500..1500 (indices 1..3 of 0, 500, ..., 2500) and wages 11..33 (indices 1..3): 5 * price + wage
    allowed = {5 * p + w for p in (1, 2, 3) for w in (1, 2, 3)}
    for row in history:
        assert row["frames"] == 4 * 10  # one 10-step episode of each of the 4 economies
        assert set(row["firm_actions"]) <= allowed, row["firm_actions"]
        assert all(math.isfinite(v) for k, v in row.items() if k.endswith(("/loss", "/reward")))
    assert all(moved > 0 for moved in result["moved"].values()), result["moved"]
