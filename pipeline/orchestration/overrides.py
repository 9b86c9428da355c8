"""What Snakemake's config merge would silently drop, refused before the plan is built.

Snakemake merges the workflow's configfile, each --configfile and the --config values key by key; a
mapping can add and replace keys but never remove one, so an empty mapping over a non-empty one
changes nothing while reading as "none". The Snakefile calls `check_overrides` with what Snakemake
was given, before `WorkflowPlan` reads the merged config.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from envs.rbc.config import ConfigError


def check_overrides(workflow_configfile: str | Path, configfiles: Sequence[str | Path],
                    command_line: Mapping) -> None:
    """Refuse an override that Snakemake's merge silently drops: an empty mapping over a non-empty one.

    `--config economies={}` reads as "no economies" but merges key by key into default.yaml's economies
    and changes nothing. The sources are merged in Snakemake's order (the workflow's configfile, each
    --configfile, then --config); an empty mapping is refused only where what came before it is not
    empty (under a new key, such as a new economy with default settings, it is kept and fine).
    """
    state = _load(workflow_configfile)
    sources = [(str(path), _load(path)) for path in configfiles] + [("--config", command_line)]
    for source, data in sources:
        for key in _ignored_empty_mappings(data, state):
            where = f"--config {key}={{}}" if source == "--config" else f"{key}: {{}} in {source}"
            drop = (" To leave an economy out, set it to null, e.g. --config 'economies={closed: null}'."
                    if key == "economies" else "")
            raise ConfigError(f"invalid workflow config: {where} changes nothing: Snakemake merges a mapping key "
                              "by key into the profile's, so an empty one removes nothing; give the keys to "
                              f"change.{drop}")
        state = _merge(state, data)


def _load(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text()) or {}


def _merge(base: Any, over: Any) -> Any:
    """Snakemake's update_config: mappings merge key by key, anything else replaces."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return copy.deepcopy(over)


def _ignored_empty_mappings(data: Any, merged: Any, prefix: str = "") -> list[str]:
    found = []
    if isinstance(data, Mapping) and isinstance(merged, Mapping):
        for key, value in data.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, Mapping) and not value and isinstance(merged.get(key), Mapping) and merged[key]:
                found.append(dotted)
            else:
                found += _ignored_empty_mappings(value, merged.get(key), f"{dotted}.")
    return found
