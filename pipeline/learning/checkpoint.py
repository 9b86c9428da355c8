"""Checkpoints: atomic to write, safe to load, and refused with a clear message when they do not fit.

A checkpoint is a plain dict of tensors and Python primitives, so it loads with
`torch.load(..., weights_only=True)`: no code from a checkpoint file ever runs. It is written to a
temporary file in the same directory, flushed to disk, then renamed over the target, so a crash
leaves either the old file or the new one, never half of one.

A torch file has no checksum of its own: bytes overwritten inside a stored tensor load silently as
other numbers. Each checkpoint therefore carries the SHA-256 of its contents (`sha256`, over every
key, value and tensor byte in a fixed order), checked on load. Checkpoints of format 1, written
before the hash existed, still load unchecked, so runs started earlier can resume. A checkpoint
whose networks, optimizer moments or penalty multipliers hold NaN or infinity comes from a run that
diverged and is refused: resumed, it would only spread them.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path
from typing import Any

import torch

from ..config import ExperimentConfig
from .files import atomic_write

FORMAT = "dge-marl/checkpoint/2"
LEGACY_FORMAT = "dge-marl/checkpoint/1"  # no content hash

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
    payload = {"format": FORMAT, **payload}
    payload["sha256"] = content_hash(payload)
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def content_hash(payload: dict[str, Any]) -> str:
    """SHA-256 of everything in `payload` but its `sha256` entry, independent of dict order."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != "sha256"})
    return digest.hexdigest()


def _feed(digest, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)};".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)};".encode())
        for item in value:
            _feed(digest, item)
    elif value is None or isinstance(value, (bool, int, float, str)):
        text = repr(value).encode()
        digest.update(f"{type(value).__name__}{len(text)};".encode() + text)
    else:
        raise TypeError(f"a checkpoint holds tensors and Python primitives, not {type(value).__name__}")


REPRODUCE = "use another checkpoint, or delete it and produce it again"


def load_checkpoint(path: str | Path, remedy: str = REPRODUCE) -> dict[str, Any]:
    """The checkpoint at `path`, or a CheckpointError naming it and ending in `remedy` (what to do)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for damaged files
        first = str(err).splitlines()[0].split(". ")[0].rstrip(".") if str(err) else ""
        raise CheckpointError(
            f"checkpoint {path} cannot be read (truncated, damaged or not a dge-marl checkpoint): "
            f"{type(err).__name__}: {first}; {remedy}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") not in (FORMAT, LEGACY_FORMAT):
        raise CheckpointError(f"checkpoint {path} is not a dge-marl checkpoint (expected format {FORMAT!r}); {remedy}")
    if payload["format"] == FORMAT:
        if "sha256" not in payload:
            raise CheckpointError(f"checkpoint {path} has no content hash (sha256), so damage cannot be ruled out; "
                                  f"{remedy}")
        if content_hash(payload) != payload["sha256"]:
            raise CheckpointError(f"checkpoint {path} is damaged: its contents do not match the hash it was saved "
                                  f"with; {remedy}")
    bad = _first_non_finite(payload.get("session"), "session")
    if bad is not None:
        raise CheckpointError(f"checkpoint {path} holds NaN or infinite values in {bad} (saved by a run that "
                              f"diverged); {remedy}")
    return payload


def checkpoint_size(payload: dict[str, Any]) -> int:
    """Bytes that saving `payload` takes (the hash adds a few dozen)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.tell()


def _first_non_finite(value: Any, where: str) -> str | None:
    """The dotted key of the first NaN or infinity in a checkpoint's nested state, or None."""
    if isinstance(value, torch.Tensor):
        return where if value.is_floating_point() and not bool(torch.isfinite(value).all()) else None
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = _first_non_finite(item, f"{where}.{key}")
        if found is not None:
            return found
    return None


def config_differences(saved: dict, current: ExperimentConfig) -> list[str]:
    """Dotted keys whose values differ between a checkpoint's config and the current one."""
    differences: list[str] = []
    _diff(saved, current.to_dict(), (), differences)
    return differences


def describe_differences(differences: list[str]) -> str:
    return "; ".join(differences[:8]) + (f"; ... ({len(differences)} in all)" if len(differences) > 8 else "")


def check_compatible(payload: dict, current: ExperimentConfig, path: str | Path, remedy: str = "") -> None:
    differences = config_differences(payload["config"], current)
    if differences:
        raise CheckpointError(f"checkpoint {path} was made with a different config: "
                              f"{describe_differences(differences)}" + (f"; {remedy}" if remedy else ""))


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
