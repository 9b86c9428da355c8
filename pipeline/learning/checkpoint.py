"""Checkpoints: atomic to write, safe to load, and refused with a clear message when they do not fit.

A checkpoint is a plain dict of tensors and Python primitives, so it loads with
`torch.load(..., weights_only=True)`: no code from a checkpoint file ever runs. It is written to a
temporary file in the same directory, flushed to disk, then renamed over the target, so a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..config import ExperimentConfig

FORMAT = "dge-marl/checkpoint/1"

# Config entries that may differ between the runs that produce and consume a checkpoint
# (bookkeeping and execution, not the experiment itself).
_FREE_KEYS = {
    ("training", "threads"),
    ("training", "device"),
    ("training", "backend"),
    ("training", "checkpoint_every"),
    ("training", "log_every"),
}
_FREE_SECTIONS = {"tracking", "evaluation", "best_response"}


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: unreadable, not ours, or made for another experiment."""


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, **payload}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for damaged files
        raise CheckpointError(
            f"checkpoint {path} cannot be read (truncated, damaged or not a dge-marl checkpoint): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a dge-marl checkpoint (expected format {FORMAT!r})")
    return payload


def config_differences(saved: dict, current: ExperimentConfig) -> list[str]:
    """Dotted keys whose values differ between a checkpoint's config and the current one."""
    differences: list[str] = []
    _diff(saved, current.to_dict(), (), differences)
    return differences


def check_compatible(payload: dict, current: ExperimentConfig, path: str | Path) -> None:
    differences = config_differences(payload["config"], current)
    if differences:
        shown = "; ".join(differences[:8]) + (f"; ... ({len(differences)} in all)" if len(differences) > 8 else "")
        raise CheckpointError(f"checkpoint {path} was made with a different config: {shown}")


def _diff(saved: Any, current: Any, path: tuple, out: list[str]) -> None:
    if path and (path[0] in _FREE_SECTIONS or path in _FREE_KEYS):
        return
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(set(saved) | set(current), key=str):
            if key not in saved or key not in current:
                if path + (key,) in _FREE_KEYS:  # e.g. a key added after the checkpoint was written
                    continue
                out.append(f"{'.'.join(map(str, path + (key,)))} only in {'current' if key in current else 'checkpoint'}")
            else:
                _diff(saved[key], current[key], path + (key,), out)
    elif isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        for i, (a, b) in enumerate(zip(saved, current)):
            _diff(a, b, path + (i,), out)
    elif saved != current:
        out.append(f"{'.'.join(map(str, path))}: checkpoint {saved!r} != current {current!r}")
