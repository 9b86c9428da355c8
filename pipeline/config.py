"""The experiment configuration: economy, policies, learner, curriculum, best response, evaluation, tracking.

One YAML file describes a whole pipeline; every section is a small dataclass with defaults and
validation. Any bad value raises `ConfigError` naming the dotted key, the value and what is
allowed, before any training starts. `--set key.path=value` on the command line overrides single
values (parsed as YAML), which is how the workflow passes seeds and fixed taxes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from envs.rbc.config import ConfigError, RBCConfig, load_yaml

GROUPS = ("consumer", "firm", "government")
ALGORITHMS = ("ppo", "pg")
REWARD_SIGNALS = ("own", "type")  # what a best-response learner's agents learn from
# The step backends the project ships (envs.rbc.backends.available_backends()), restated so that reading a
# config does not import the environment.
BACKENDS = ("torch", "cuda")


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"invalid config: {key}={value!r}; allowed: {allowed}")


def _number(key: str, value: Any, low: float | None = None, high: float | None = None, strict_low=False) -> float:
    if isinstance(value, str) and _looks_numeric(value):
        _fail(key, value, "a finite number (this value is text: quoted, or read by a YAML 1.1 parser, "
                          "as Snakemake reads profiles; write 5.0e-5 rather than 5e-5)")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(key, value, "a finite number")
    if low is not None and (value < low or (strict_low and value == low)):
        _fail(key, value, f"a number {'>' if strict_low else '>='} {low}" + (f" and <= {high}" if high is not None else ""))
    if high is not None and value > high:
        _fail(key, value, f"a number <= {high}")
    return float(value)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _integer(key: str, value: Any, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(key, value, f"an integer >= {low}")
    return int(value)


def _per_group(key: str, value: Any, default: dict[str, float], low: float = 0.0, strict_low=False) -> dict[str, float]:
    if not isinstance(value, dict):
        _fail(key, value, f"a mapping with keys {list(GROUPS)}")
    unknown = sorted(set(value) - set(GROUPS))
    if unknown:
        _fail(f"{key}.{unknown[0]}", value[unknown[0]], f"one of the groups {list(GROUPS)} as key")
    merged = {**default, **value}
    return {g: _number(f"{key}.{g}", merged[g], low, strict_low=strict_low) for g in GROUPS}


def _mapping(key: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(key, value, "a mapping")
    return value


def _reject_unknown(key: str, data: dict, cls) -> None:
    known = {f.name for f in fields(cls)}
    for name in data:
        if name not in known:
            _fail(f"{key}.{name}" if key else name, data[name], f"known keys of {key or 'the config'}: {sorted(known)}")


@dataclass
class PolicyConfig:
    """Networks (spec 7.2); `factory` swaps in a user's network builder `package.module:function`."""

    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    # bfloat16 autocast of the networks on the CPU: true, false, or "auto" (only where the CPU multiplies
    # bf16 natively; elsewhere PyTorch emulates it and the networks run an order of magnitude slower).
    bf16: bool | str = False
    factory: str | None = None

    def validate(self, key: str = "policy") -> None:
        if not isinstance(self.hidden_sizes, list) or not self.hidden_sizes:
            _fail(f"{key}.hidden_sizes", self.hidden_sizes, "a non-empty list of positive integers")
        for i, size in enumerate(self.hidden_sizes):
            _integer(f"{key}.hidden_sizes.{i}", size, 1)
        if not isinstance(self.bf16, bool) and self.bf16 != "auto":
            _fail(f"{key}.bf16", self.bf16, "true, false or 'auto'")
        if self.factory is not None and (not isinstance(self.factory, str) or ":" not in self.factory):
            _fail(f"{key}.factory", self.factory, "null or 'package.module:function'")

    def options(self) -> dict:
        return {"hidden_sizes": list(self.hidden_sizes), "bf16": self.bf16}


@dataclass
class TrainingConfig:
    """The learner (spec 7.1, 7.3) and the run's bookkeeping."""

    num_envs: int = 16
    seed: int = 0
    device: str = "cpu"
    backend: str = "torch"  # "cuda": the fused NVRTC kernels (needs a CUDA device and the gpu extra)
    threads: int = 0  # 0: leave torch's default
    algorithm: str = "ppo"
    ppo_epochs: int = 2
    clip_epsilon: float = 0.1
    value_clip: bool = True
    gamma: float = 0.9999
    gae_lambda: float = 1.0
    max_grad_norm: float = 2.0
    value_coef: float = 1.0
    learning_rate: dict[str, float] = field(
        default_factory=lambda: {"consumer": 1e-3, "firm": 1e-3, "government": 5e-4}
    )
    reward_scale: dict[str, float] = field(
        default_factory=lambda: {"consumer": 5.0, "firm": 30000.0, "government": 1000.0}
    )
    checkpoint_every: int = 100
    log_every: int = 10
    # A fixed-tax baseline whose firms produce less than `collapse_production` units per firm and step in
    # every one of `collapse_window` consecutive episodes of a stage has collapsed: nobody sets its taxes,
    # so nothing can revive it, and it stops there (0: never stop).
    collapse_window: int = 0
    collapse_production: float = 1.0

    def validate(self, key: str = "training") -> None:
        _integer(f"{key}.num_envs", self.num_envs, 1)
        _integer(f"{key}.seed", self.seed, 0)
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            _fail(f"{key}.device", self.device, "'cpu' or 'cuda[:N]'")
        if self.backend not in BACKENDS:
            _fail(f"{key}.backend", self.backend, " | ".join(BACKENDS))
        if self.backend == "cuda" and not self.device.startswith("cuda"):
            _fail(f"{key}.backend", self.backend,
                  f"'torch', or 'cuda' with training.device 'cuda[:N]' (not {self.device!r})")
        _integer(f"{key}.threads", self.threads, 0)
        if self.algorithm not in ALGORITHMS:
            _fail(f"{key}.algorithm", self.algorithm, " | ".join(ALGORITHMS))
        _integer(f"{key}.ppo_epochs", self.ppo_epochs, 1)
        _number(f"{key}.clip_epsilon", self.clip_epsilon, 0.0, strict_low=True)
        if not isinstance(self.value_clip, bool):
            _fail(f"{key}.value_clip", self.value_clip, "true or false")
        _number(f"{key}.gamma", self.gamma, 0.0, 1.0)
        _number(f"{key}.gae_lambda", self.gae_lambda, 0.0, 1.0)
        _number(f"{key}.max_grad_norm", self.max_grad_norm, 0.0, strict_low=True)
        _number(f"{key}.value_coef", self.value_coef, 0.0)
        self.learning_rate = _per_group(
            f"{key}.learning_rate", self.learning_rate, {"consumer": 1e-3, "firm": 1e-3, "government": 5e-4}, 0.0, True
        )
        self.reward_scale = _per_group(
            f"{key}.reward_scale", self.reward_scale, {"consumer": 5.0, "firm": 30000.0, "government": 1000.0}, 0.0, True
        )
        _integer(f"{key}.checkpoint_every", self.checkpoint_every, 1)
        _integer(f"{key}.log_every", self.log_every, 1)
        _integer(f"{key}.collapse_window", self.collapse_window, 0)
        _number(f"{key}.collapse_production", self.collapse_production, 0.0)


@dataclass
class StageConfig:
    name: str
    episodes: int
    train: list[str]


@dataclass
class FirmMaskSchedule:
    """Spec 2.4: the allowed price and wage ranges grow linearly from a center to the full grids."""

    start: int = 0
    end: int = 30000
    center_price: float = 1000.0
    center_wage: float = 22.0


@dataclass
class TaxMaskSchedule:
    """Spec 2.4: both tax rates are capped at (e - start) / (end - start)."""

    start: int = 30000
    end: int = 60000


@dataclass
class EntropySchedule:
    """Spec 6: coefficient = initial * max(exp(-(e - e_start) / decay), floor), e_start = type's first episode."""

    initial: float = 0.5
    decay: float = 10000.0
    floor: float = 0.1


@dataclass
class NoPonziSchedule:
    """Spec 5.4: the multiplier starts at `initial` and rises by `rate` x mean debt after every update."""

    initial: float = 0.0
    rate: float = 0.0


def _paper_stages() -> list[StageConfig]:
    return [
        StageConfig("consumers", 30000, ["consumer"]),
        StageConfig("firms", 15000, ["consumer", "firm"]),
        StageConfig("taxes", 15000, ["consumer", "firm"]),
        StageConfig("government", 140000, ["consumer", "firm", "government"]),
    ]


@dataclass
class CurriculumConfig:
    """The structured curriculum (spec 6) as data: stages in order, and schedules over the episode counter."""

    stages: list[StageConfig] = field(default_factory=_paper_stages)
    firm_mask: FirmMaskSchedule | None = field(default_factory=FirmMaskSchedule)
    tax_mask: TaxMaskSchedule | None = field(default_factory=TaxMaskSchedule)
    labor_disutility_decay: float | None = 10000.0
    entropy: dict[str, EntropySchedule] = field(
        default_factory=lambda: {g: EntropySchedule() for g in GROUPS}
    )
    no_ponzi: dict[str, NoPonziSchedule] = field(
        default_factory=lambda: {"consumer": NoPonziSchedule(), "firm": NoPonziSchedule()}
    )

    def validate(self, key: str = "curriculum") -> None:
        if not isinstance(self.stages, list) or not self.stages:
            _fail(f"{key}.stages", self.stages, "a non-empty list of stages")
        names = set()
        for i, stage in enumerate(self.stages):
            k = f"{key}.stages.{i}"
            if not isinstance(stage.name, str) or not stage.name.replace("_", "").replace("-", "").isalnum():
                _fail(f"{k}.name", stage.name, "a name of letters, digits, '_' or '-'")
            if stage.name in names:
                _fail(f"{k}.name", stage.name, "a name not used by another stage")
            names.add(stage.name)
            _integer(f"{k}.episodes", stage.episodes, 1)
            if not isinstance(stage.train, list) or any(g not in GROUPS for g in stage.train):
                _fail(f"{k}.train", stage.train, f"a list of groups from {list(GROUPS)}")
        if self.firm_mask is not None:
            m = self.firm_mask
            _integer(f"{key}.firm_mask.start", m.start, 0)
            _integer(f"{key}.firm_mask.end", m.end, 0)
            if m.end < m.start:
                _fail(f"{key}.firm_mask.end", m.end, f"an episode >= firm_mask.start ({m.start})")
            _number(f"{key}.firm_mask.center_price", m.center_price, 0.0)
            _number(f"{key}.firm_mask.center_wage", m.center_wage, 0.0)
        if self.tax_mask is not None:
            _integer(f"{key}.tax_mask.start", self.tax_mask.start, 0)
            _integer(f"{key}.tax_mask.end", self.tax_mask.end, 0)
            if self.tax_mask.end < self.tax_mask.start:
                _fail(f"{key}.tax_mask.end", self.tax_mask.end, f"an episode >= tax_mask.start ({self.tax_mask.start})")
        if self.labor_disutility_decay is not None:
            _number(f"{key}.labor_disutility_decay", self.labor_disutility_decay, 0.0, strict_low=True)
        for g in GROUPS:
            if g not in self.entropy:
                _fail(f"{key}.entropy", sorted(self.entropy), f"a schedule for every group {list(GROUPS)}")
            s = self.entropy[g]
            _number(f"{key}.entropy.{g}.initial", s.initial, 0.0)
            _number(f"{key}.entropy.{g}.decay", s.decay, 0.0, strict_low=True)
            _number(f"{key}.entropy.{g}.floor", s.floor, 0.0, 1.0)
        for g, s in self.no_ponzi.items():
            if g not in ("consumer", "firm"):
                _fail(f"{key}.no_ponzi.{g}", s, "schedules for 'consumer' and 'firm' only")
            _number(f"{key}.no_ponzi.{g}.initial", s.initial, 0.0)
            _number(f"{key}.no_ponzi.{g}.rate", s.rate, 0.0)

    @property
    def total_episodes(self) -> int:
        return sum(s.episodes for s in self.stages)

    def stage_bounds(self) -> dict[str, tuple[int, int]]:
        """Each stage's episodes as [start, end), in curriculum order."""
        bounds, start = {}, 0
        for stage in self.stages:
            bounds[stage.name] = (start, start + stage.episodes)
            start += stage.episodes
        return bounds

    def stage_index(self, name: str) -> int:
        for i, stage in enumerate(self.stages):
            if stage.name == name:
                return i
        raise ConfigError(f"unknown stage {name!r}; the curriculum's stages are {[s.name for s in self.stages]}")


@dataclass
class BestResponseLearner:
    """One way of searching for a best response; fields left None take the section's values."""

    algorithm: str | None = None
    learning_rate: dict[str, float] | None = None
    entropy_coef: float | None = None
    ppo_epochs: int | None = None
    # "own": each agent learns from its own reward (independent learners, the paper's); "type": from its
    # type's mean reward, the objective of the shared policy when the whole type deviates together.
    reward: str | None = None
    # Weight of the critic's loss; 0 keeps the trained critic as a fixed baseline, so the search moves the
    # shared trunk for the policy's sake only (None: training.value_coef).
    value_coef: float | None = None


@dataclass
class BestResponseConfig:
    """Spec 8: train one type against the frozen others; by default vanilla PG, no masks, full disutility.

    Each of `learners` (name -> settings that differ from this section's) is one search; the gap is the
    largest gain any of them finds. Every `select_every` episodes the learner's policy is evaluated on
    `select_episodes` episodes of their own random numbers and the best policy seen (the starting one
    included) is the one measured at the end, so a search that drifts down does not report a loss it
    could have avoided; 0 keeps the last policy.
    """

    episodes: int = 1000
    algorithm: str = "pg"
    ppo_epochs: int = 2
    entropy_coef: float = 0.05
    learning_rate: dict[str, float] = field(default_factory=lambda: {"consumer": 1e-3, "firm": 1e-3, "government": 1e-3})
    use_masks: bool = False
    eval_episodes: int = 20
    window: int = 50  # episodes averaged at each end of the learning curve
    learners: dict[str, BestResponseLearner] | None = None
    select_every: int = 0
    select_episodes: int = 4
    # Learning rate of an agent deviating alone (per type; None: its learner's). Its own samples are a
    # hundredth of the consumers' batch, and Adam takes steps of the same size on that much noisier gradient.
    individual_learning_rate: dict[str, float] | None = None

    def validate(self, key: str = "best_response") -> None:
        _integer(f"{key}.episodes", self.episodes, 1)
        if self.algorithm not in ALGORITHMS:
            _fail(f"{key}.algorithm", self.algorithm, " | ".join(ALGORITHMS))
        _integer(f"{key}.ppo_epochs", self.ppo_epochs, 1)
        _number(f"{key}.entropy_coef", self.entropy_coef, 0.0)
        # A rate of 0 is allowed: a search that cannot move measures the evaluation's own noise (none).
        self.learning_rate = _per_group(
            f"{key}.learning_rate", self.learning_rate, {"consumer": 1e-3, "firm": 1e-3, "government": 1e-3}, 0.0
        )
        if not isinstance(self.use_masks, bool):
            _fail(f"{key}.use_masks", self.use_masks, "true or false")
        _integer(f"{key}.eval_episodes", self.eval_episodes, 1)
        _integer(f"{key}.window", self.window, 1)
        _integer(f"{key}.select_every", self.select_every, 0)
        _integer(f"{key}.select_episodes", self.select_episodes, 1)
        if self.individual_learning_rate is not None:
            self.individual_learning_rate = _per_group(
                f"{key}.individual_learning_rate", self.individual_learning_rate, self.learning_rate, 0.0)
        if self.learners is not None:
            if not isinstance(self.learners, dict) or not self.learners:
                _fail(f"{key}.learners", self.learners, "null or a mapping of learner names to settings")
            for name, learner in self.learners.items():
                if not str(name).isidentifier():
                    _fail(f"{key}.learners.{name}", learner, "learner names made of letters, digits and '_'")
                self.learners[name] = self._learner(f"{key}.learners.{name}", learner)

    def _learner(self, key: str, data: Any) -> BestResponseLearner:
        learner = data if isinstance(data, BestResponseLearner) else _build(BestResponseLearner, key, data)
        if learner.algorithm is not None and learner.algorithm not in ALGORITHMS:
            _fail(f"{key}.algorithm", learner.algorithm, " | ".join(ALGORITHMS))
        if learner.learning_rate is not None:
            learner.learning_rate = _per_group(f"{key}.learning_rate", learner.learning_rate, self.learning_rate, 0.0)
        if learner.entropy_coef is not None:
            _number(f"{key}.entropy_coef", learner.entropy_coef, 0.0)
        if learner.ppo_epochs is not None:
            _integer(f"{key}.ppo_epochs", learner.ppo_epochs, 1)
        if learner.value_coef is not None:
            _number(f"{key}.value_coef", learner.value_coef, 0.0)
        if learner.reward is not None and learner.reward not in REWARD_SIGNALS:
            _fail(f"{key}.reward", learner.reward, " | ".join(REWARD_SIGNALS))
        return learner

    def learner_names(self) -> list[str]:
        return list(self.learners) if self.learners else [self.algorithm]

    def learner(self, name: str | None = None, individual: bool = False) -> BestResponseLearner:
        """The complete settings of a named learner (default: the first), the section's values filled in;
        `individual`: as one agent deviating alone uses it (`individual_learning_rate`, where set)."""
        names = self.learner_names()
        name = names[0] if name is None else name
        if name not in names:
            raise ConfigError(f"invalid config: best_response learner {name!r} is not defined; allowed: {names}")
        own = (self.learners or {}).get(name, BestResponseLearner())
        return BestResponseLearner(
            algorithm=own.algorithm or self.algorithm,
            learning_rate=(dict(self.individual_learning_rate) if individual and self.individual_learning_rate
                           else own.learning_rate or dict(self.learning_rate)),
            entropy_coef=self.entropy_coef if own.entropy_coef is None else own.entropy_coef,
            ppo_epochs=own.ppo_epochs or self.ppo_epochs,
            reward=own.reward or "own",
            value_coef=own.value_coef,
        )


@dataclass
class EvaluationConfig:
    episodes: int = 20
    num_envs: int = 16
    deterministic: bool = False

    def validate(self, key: str = "evaluation") -> None:
        _integer(f"{key}.episodes", self.episodes, 1)
        _integer(f"{key}.num_envs", self.num_envs, 1)
        if not isinstance(self.deterministic, bool):
            _fail(f"{key}.deterministic", self.deterministic, "true or false")


@dataclass
class TrackingConfig:
    """MLflow. `uri: null` means MLFLOW_TRACKING_URI if set, else sqlite under `results/`."""

    enabled: bool = True
    uri: str | None = None
    experiment: str = "dge-marl"
    pipeline: str | None = None  # parent run identity (e.g. "open/seed0"); None: no parent
    log_every: int = 10

    def validate(self, key: str = "tracking") -> None:
        if not isinstance(self.enabled, bool):
            _fail(f"{key}.enabled", self.enabled, "true or false")
        if self.uri is not None and not isinstance(self.uri, str):
            _fail(f"{key}.uri", self.uri, "null or a tracking URI string")
        if not isinstance(self.experiment, str) or not self.experiment:
            _fail(f"{key}.experiment", self.experiment, "a non-empty string")
        if self.pipeline is not None and not isinstance(self.pipeline, str):
            _fail(f"{key}.pipeline", self.pipeline, "null or a string")
        _integer(f"{key}.log_every", self.log_every, 1)


@dataclass
class ExperimentConfig:
    economy: RBCConfig = field(default_factory=RBCConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    best_response: BestResponseConfig = field(default_factory=BestResponseConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def validate(self) -> "ExperimentConfig":
        self.economy.validate()
        self.policy.validate()
        self.training.validate()
        self.curriculum.validate()
        self.best_response.validate()
        self.evaluation.validate()
        self.tracking.validate()
        return self

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict | None) -> "ExperimentConfig":
        data = copy.deepcopy(_mapping("config", data))
        _reject_unknown("", data, cls)
        economy = data.get("economy") or {}
        if not isinstance(economy, dict):
            _fail("economy", economy, "a mapping")
        return cls(
            economy=RBCConfig.from_dict(economy),
            policy=_build(PolicyConfig, "policy", data.get("policy")),
            training=_build(TrainingConfig, "training", data.get("training")),
            curriculum=_build_curriculum(data.get("curriculum")),
            best_response=_build(BestResponseConfig, "best_response", data.get("best_response")),
            evaluation=_build(EvaluationConfig, "evaluation", data.get("evaluation")),
            tracking=_build(TrackingConfig, "tracking", data.get("tracking")),
        ).validate()

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> "ExperimentConfig":
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = load_yaml(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
        _check_file_shape(path, data)
        return cls.from_dict(apply_overrides(data, overrides or []))


def _check_file_shape(path: Path, data: Any) -> None:
    """An experiment file must say something: read as all defaults, it would start the paper's full-scale run."""
    resolved = "results/<profile>/<economy>/seed<N>/config/train.yaml"
    if data is not None and not isinstance(data, dict):
        sections = ", ".join(f.name for f in fields(ExperimentConfig))
        raise ConfigError(f"config file {path} is not a mapping of sections ({sections}) but {type(data).__name__} "
                          f"{data!r:.60}; give an experiment config, e.g. {resolved}")
    if isinstance(data, dict) and "experiment" in data:
        raise ConfigError(f"config file {path} is a workflow profile (for snakemake --configfile), not an experiment "
                          f"config: give its resolved experiment, e.g. {resolved}, or pipeline.profiles.load_experiment "
                          f"the profile with an economy and a seed")
    if not data or all(value is None or value == {} for value in data.values()):
        raise ConfigError(
            f"config file {path} sets no value (it is empty, or so are its sections): a run would use the built-in "
            f"defaults, the paper's full scale ({CurriculumConfig().total_episodes:,} episodes); write the settings "
            f"to run into it, e.g. copy {resolved}")


def _build(cls, key: str, data: Any):
    data = _mapping(key, data)
    _reject_unknown(key, data, cls)
    try:
        return cls(**data)
    except TypeError as err:
        raise ConfigError(f"invalid config section {key}: {err}") from None


def _build_curriculum(data: Any) -> CurriculumConfig:
    data = dict(_mapping("curriculum", data))
    _reject_unknown("curriculum", data, CurriculumConfig)
    defaults = CurriculumConfig()
    if "stages" in data:
        stages = data["stages"]
        if not isinstance(stages, list):
            _fail("curriculum.stages", stages, "a list of {name, episodes, train}")
        built = []
        for i, stage in enumerate(stages):
            stage = _mapping(f"curriculum.stages.{i}", stage)
            _reject_unknown(f"curriculum.stages.{i}", stage, StageConfig)
            for required in ("name", "episodes", "train"):
                if required not in stage:
                    _fail(f"curriculum.stages.{i}.{required}", None, "a value (name, episodes and train are required)")
            built.append(StageConfig(**stage))
        data["stages"] = built
    for name, cls in (("firm_mask", FirmMaskSchedule), ("tax_mask", TaxMaskSchedule)):
        if name in data and data[name] is not None:
            data[name] = _build(cls, f"curriculum.{name}", data[name])
    if "entropy" in data:
        entropy = _mapping("curriculum.entropy", data["entropy"])
        merged = dict(defaults.entropy)
        for group, sched in entropy.items():
            if group not in GROUPS:
                _fail(f"curriculum.entropy.{group}", sched, f"schedules keyed by {list(GROUPS)}")
            merged[group] = _build(EntropySchedule, f"curriculum.entropy.{group}", sched)
        data["entropy"] = merged
    if "no_ponzi" in data:
        no_ponzi = _mapping("curriculum.no_ponzi", data["no_ponzi"])
        merged = dict(defaults.no_ponzi)
        for group, sched in no_ponzi.items():
            merged[group] = _build(NoPonziSchedule, f"curriculum.no_ponzi.{group}", sched)
        data["no_ponzi"] = merged
    return CurriculumConfig(**data)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `key.path=value` strings (values parsed as YAML; list items addressed by index)."""
    data = copy.deepcopy(data)
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"override {item!r} is invalid; allowed: 'key.path=value'")
        try:
            value = load_yaml(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {err}") from None
        parts = path.split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt = _child(node, part, path)
            if nxt is None:
                nxt = {}
                _assign(node, part, nxt, path)
            node = nxt
        _assign(node, parts[-1], value, path)
    return data


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, list):
        index = _list_index(node, part, path)
        return node[index]
    if isinstance(node, dict):
        return node.get(part)
    raise ConfigError(f"override path {path!r} goes through a value that is not a mapping or list at {part!r}")


def _assign(node: Any, part: str, value: Any, path: str) -> None:
    if isinstance(node, list):
        node[_list_index(node, part, path)] = value
    elif isinstance(node, dict):
        node[part] = value
    else:
        raise ConfigError(f"override path {path!r} goes through a value that is not a mapping or list at {part!r}")


def _list_index(node: list, part: str, path: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise ConfigError(f"override path {path!r}: {part!r} is not an index of a list of {len(node)} items")
    return int(part)
