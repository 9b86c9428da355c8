"""Workflow profiles read outside Snakemake: the experiment a rule of the DAG would run.

A profile (`workflow/config/*.yaml`) names the economies, the seeds and the `experiment` they
share; Snakemake merges one given with `--configfile` over `workflow/config/default.yaml`, and each
rule reads the experiment resolved for its economy, seed and kind
(`results/<profile>/<economy>/seed<N>/config/<kind>.yaml`). The workflow's plan
(pipeline.orchestration.plan) and the command-line tools both resolve it here, so that
`python -m pipeline.learning.train --config workflow/config/smoke.yaml --economy open --seed 0 ...`
trains exactly what the smoke DAG's rule trains.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

from envs.rbc.config import ConfigError, load_yaml

from .config import GROUPS, ExperimentConfig, apply_overrides

ABLATION = "nocurriculum"
CONFIG_KINDS = ("train", "evaluate", "best_response", "ablation_train", "ablation_evaluate")
# Top-level keys of a workflow profile; an experiment config has none of them.
PROFILE_KEYS = (
    "profile", "seeds", "economies", "threads_per_job", "prefix_stages", "fixed_taxes", "consumer_welfare_branch",
    "consumer_welfare_max_corporate_tax", "ablation", "best_response_types", "best_response_branches", "experiment",
    "economy_seeds", "tax_grid", "best_response_power", "best_response_individual", "record_machine",
    "use_archive",
)
_NULL_TEXT = ("null", "Null", "NULL", "~")  # YAML's nulls, as Snakemake's --config hands them over (text)
DEFAULT_PROFILE = Path(__file__).resolve().parents[1] / "workflow" / "config" / "default.yaml"


def fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"invalid workflow config: {key}={value!r}; allowed: {allowed}")


def merged(base: Any, over: Any) -> Any:
    """What Snakemake's --configfile does: mappings merge key by key, any other value replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merged(base[k], v) if k in base else copy.deepcopy(v) for k, v in over.items()}}
    return copy.deepcopy(over)


def flag(config: dict, key: str, default: bool) -> bool:
    """A true/false key; `--config key=false` hands the value over as text (YAML's base loader), read here."""
    value = config.get(key, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool):
        fail(key, value, "true or false")
    return value


def numbers_from_text(values: Any, kind: type) -> Any:
    """Lists given on Snakemake's command line (`--config seeds=[0,1]`) arrive with every item as text
    (Snakemake reads them with YAML's base loader); read those items as numbers, leave anything else to
    the validation that follows."""
    if not isinstance(values, list):
        return values
    out = []
    for value in values:
        if isinstance(value, str):
            try:
                value = kind(value)
            except ValueError:
                pass
        out.append(value)
    return out


def _seed_list(key: str, values: Any) -> list[int]:
    values = numbers_from_text(values, int)
    if not isinstance(values, list) or not values or any(
        isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in values
    ):
        fail(key, values, "a non-empty list of integers >= 0")
    return values


def seeds(config: dict) -> list[int]:
    return _seed_list("seeds", config.get("seeds", [0]))


def economy_seeds(config: dict) -> dict[str, list[int]]:
    """`economy_seeds`: economy name -> its own seed list, for economies that run other seeds than `seeds`.

    An economy the profile names but drops (set to null) leaves its seed list unused, so that dropping one of
    default.yaml's economies does not also require deleting its seeds, which a merge cannot do."""
    given, names = config.get("economy_seeds") or {}, economies(config)
    if not isinstance(given, dict):
        fail("economy_seeds", given, "a mapping of economy names to lists of seeds")
    dropped = set(config.get("economies") or {}) - set(names)
    for economy in given:
        if economy not in names and economy not in dropped:
            fail(f"economy_seeds.{economy}", given[economy], f"economies of this profile: {list(names)}")
    return {economy: _seed_list(f"economy_seeds.{economy}", values)
            for economy, values in given.items() if economy in names}


def profile_name(config: dict) -> str:
    name = config.get("profile", "default")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        fail("profile", name, "a name of letters, digits, '-' or '_'")
    return name


def economies(config: dict) -> dict[str, dict]:
    given = config.get("economies", {"open": {"open_economy": True}})
    if not isinstance(given, dict) or not given:
        fail("economies", given, "a mapping of economy names to economy overrides")
    # An economy set to null is left out: Snakemake's merge cannot delete a key, so this is how a profile or
    # the command line (where null arrives as text) drops one of default.yaml's economies.
    found = {name: o for name, o in given.items() if o is not None and o not in _NULL_TEXT}
    if not found:
        fail("economies", given, "a mapping with at least one economy not set to null")
    for name, overrides in found.items():
        if not str(name).isidentifier():
            fail(f"economies.{name}", overrides, "economy names made of letters, digits and '_'")
        if not isinstance(overrides, dict):
            fail(f"economies.{name}", overrides, "a mapping of economy config keys to values")
    return found


def threads(config: dict) -> int:
    value = config.get("threads_per_job", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail("threads_per_job", value, "an integer >= 1")
    return value


def experiment_section(config: dict) -> dict:
    value = config.get("experiment") or {}
    if not isinstance(value, dict):
        fail("experiment", value, "a mapping (the experiment config)")
    return value


def experiment_id(profile: str, economy: str) -> str:
    """The MLflow experiment of one profile's economy."""
    return f"dge-marl/{profile}/{economy}"


def pipeline_id(profile: str, economy: str, seed: int) -> str:
    """The parent run of one pipeline (economy and seed)."""
    return f"{profile}/{economy}/seed{seed}"


def experiment_dict(config: dict, economy: str, seed: int, kind: str = "train") -> dict:
    """The resolved experiment a rule of `kind` reads (only the sections it depends on differ)."""
    if kind not in CONFIG_KINDS:
        raise ValueError(f"unknown config kind {kind!r}; allowed: {CONFIG_KINDS}")
    name = profile_name(config)
    data = base_experiment(config, economy, seed)
    data["training"]["threads"] = threads(config)
    ablation = kind.startswith("ablation_")
    kind = kind.removeprefix("ablation_")
    tracking = data.setdefault("tracking", {})
    tracking["experiment"] = experiment_id(name, economy)
    tracking["pipeline"] = pipeline_id(name, economy, seed)
    for section, keep in (("evaluation", "evaluate"), ("best_response", "best_response")):
        if kind != keep:
            data.pop(section, None)
    if ablation:
        total = ExperimentConfig.from_dict(data).curriculum.total_episodes
        data["curriculum"] = {
            **{k: v for k, v in data.get("curriculum", {}).items() if k in ("entropy", "no_ponzi")},
            "stages": [{"name": ABLATION, "episodes": total, "train": list(GROUPS)}],
            "firm_mask": None,
            "tax_mask": None,
            "labor_disutility_decay": None,
        }
    return data


def validated(config: dict, economy: str, seed: int, kind: str | None = None) -> ExperimentConfig:
    """The experiment of `kind` (None: the profile's own, before the kind's changes), validated.

    A bad value is named as the profile spells it (`experiment.training.ppo_epochs`), with the
    economy and seed it was found for.
    """
    try:
        data = base_experiment(config, economy, seed) if kind is None else experiment_dict(config, economy, seed, kind)
        return ExperimentConfig.from_dict(data)
    except ConfigError as err:
        message = (
            str(err)
            .replace("invalid config: ", "invalid config: experiment.")
            .replace("invalid economy config: ", "invalid config: experiment.economy.")
            .replace("unknown economy config key(s)", "unknown experiment.economy key(s)")
        )
        raise ConfigError(f"{message} (economy {economy!r}, seed {seed})") from None


def base_experiment(config: dict, economy: str, seed: int) -> dict:
    """The profile's experiment with the economy's overrides and the seed."""
    data = copy.deepcopy(experiment_section(config))
    overrides = economies(config)[economy]
    data = apply_overrides(data, [f"economy.{k}={_yaml_value(v)}" for k, v in overrides.items()])
    data.setdefault("training", {})["seed"] = int(seed)
    return data


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def load_experiment(
    path: str | Path, overrides: list[str] | None = None, economy: str | None = None, seed: int | None = None,
    kind: str = "train",
) -> ExperimentConfig:
    """`--config` of the command-line tools: an experiment config, or a workflow profile resolved as the DAG does.

    A profile is merged over workflow/config/default.yaml (unless it is that file); `economy`
    defaults to the profile's only economy and `seed` to the economy's first seed. `overrides` apply to the
    resolved experiment.
    """
    data = _read(path)
    if not isinstance(data, dict) or not any(key in data for key in PROFILE_KEYS):
        if economy is not None or seed is not None:
            raise ConfigError(f"--economy and --seed select from a workflow profile; {path} is an experiment config")
        return ExperimentConfig.load(path, overrides)  # with its own checks of what an experiment file holds
    if Path(path).resolve() != DEFAULT_PROFILE:
        data = merged(_read(DEFAULT_PROFILE), data)
    names = list(economies(data))
    if economy is None and len(names) > 1:
        raise ConfigError(f"--economy is required with profile {path}: allowed: {' | '.join(names)}")
    economy = names[0] if economy is None else economy
    if economy not in names:
        fail("--economy", economy, " | ".join(names))
    if seed is None:
        seed = economy_seeds(data).get(economy, seeds(data))[0]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        fail("--seed", seed, "an integer >= 0")
    validated(data, economy, seed, kind)  # the profile's own values, named as the profile spells them
    return ExperimentConfig.from_dict(apply_overrides(experiment_dict(data, economy, seed, kind), overrides or []))


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config, --economy, --seed and --set, the same for every command-line tool."""
    parser.add_argument("--config", required=True,
                        help="experiment YAML (such as results/<profile>/<economy>/seed<N>/config/<kind>.yaml), "
                             "or a workflow profile (workflow/config/*.yaml) resolved as the workflow does")
    parser.add_argument("--economy", default=None,
                        help="with a profile: which of its economies (default: its only one)")
    parser.add_argument("--seed", type=int, default=None, help="with a profile: the seed (default: its first)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one experiment value (YAML-parsed), e.g. training.algorithm=pg; repeatable")


def _read(path: str | Path) -> object:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return load_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
