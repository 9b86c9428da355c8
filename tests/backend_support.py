"""Comparison of two environment backends' step outputs, shared by the host and device GPU tests."""

from __future__ import annotations

import torch
from tensordict import TensorDictBase

# The fused step sums in another order than torch: a relative bound on every float output, scaled
# by that output's largest magnitude (at least 1), leaves room for float32 reassociation only.
RELATIVE_TOLERANCE = 1e-4


def assert_same_step_outputs(candidate: TensorDictBase, reference: TensorDictBase) -> None:
    """Same keys, shapes, dtypes and devices; integers equal; floats within RELATIVE_TOLERANCE."""
    assert set(reference.keys(True, True)) == set(candidate.keys(True, True))
    for key in reference.keys(True, True):
        a, b = candidate[key], reference[key]
        assert a.shape == b.shape and a.dtype == b.dtype and a.device == b.device, key
        if a.dtype.is_floating_point:
            scale = b.abs().amax().double().clamp_min(1.0)
            assert float((a.double() - b.double()).abs().max()) <= RELATIVE_TOLERANCE * scale, key
        else:
            assert torch.equal(a, b), key
