"""The workflow's plan: which pipelines, branches, stages and analyses a profile asks for.

The Snakefile stays declarative: it asks this module what to build. Everything here is plain
Python, validated before the DAG is built, so a bad profile value fails before any rule runs with
a message naming the key, and the same logic is unit-tested without Snakemake.

Vocabulary. A *pipeline* is one economy (open, closed) and one seed. Its curriculum starts with
*prefix* stages shared by every branch (no taxes yet); then each *branch* runs the remaining
stages: `learned` (the government learns, total welfare), `consumer_welfare` (the government
learns and maximizes consumer welfare), and `fixedXX` (income and corporate tax fixed at XX%,
consumers and firms keep learning). The `nocurriculum` ablation trains every type from episode 0
with full action ranges for the same number of episodes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from envs.rbc.config import RBCConfig

from .. import profiles
from ..config import GROUPS, ExperimentConfig
from ..factory import check_factory
from ..profiles import ABLATION, CONFIG_KINDS, PROFILE_KEYS, fail, numbers_from_text

__all__ = ["ABLATION", "CONFIG_KINDS", "INDIVIDUAL", "POWER", "PREFIX", "Branch", "WorkflowPlan", "on_tax_grids"]

PREFIX = "prefix"
POWER = "power"  # the best-response search started from an untrained network of the type
INDIVIDUAL = "agent_"  # prefix of an individual deviation's probe name
GOLDEN_FRACTION = (5 ** 0.5 - 1) / 2  # 0.618...: consecutive multiples, modulo 1, spread evenly


@dataclass(frozen=True)
class Branch:
    name: str
    fixed_tax: float | None = None  # the income rate, and the corporate rate unless fixed_corporate_tax differs
    welfare: str | None = None
    max_corporate_tax: float | None = None
    fixed_corporate_tax: float | None = None

    @property
    def fixed_rates(self) -> tuple[float, float] | None:
        """(income, corporate) rates of a fixed-tax baseline, None for a learned government."""
        if self.fixed_tax is None:
            return None
        return self.fixed_tax, self.fixed_tax if self.fixed_corporate_tax is None else self.fixed_corporate_tax

    def cli_flags(self) -> str:
        flags = []
        if self.fixed_tax is not None:
            flags.append(f"--fixed-tax {self.fixed_tax}")
        if self.fixed_corporate_tax is not None:
            flags.append(f"--fixed-corporate-tax {self.fixed_corporate_tax}")
        if self.welfare is not None:
            flags.append(f"--welfare {self.welfare}")
        if self.max_corporate_tax is not None:
            flags.append(f"--max-corporate-tax {self.max_corporate_tax}")
        return " ".join(flags)


class WorkflowPlan:
    def __init__(self, config: dict):
        config = copy.deepcopy(config)
        for key in config:
            if key not in PROFILE_KEYS:
                fail(key, config[key], f"known keys: {sorted(PROFILE_KEYS)}")
        self._config = config
        self.profile = profiles.profile_name(config)
        self.seeds = profiles.seeds(config)
        self.economies = profiles.economies(config)
        self._economy_seeds = profiles.economy_seeds(config)
        self.threads = profiles.threads(config)
        self.experiment = profiles.experiment_section(config)

        base = self._validated(next(iter(self.economies)), self.seeds[0], "experiment")
        # Every economy shares the experiment's policy section, so one check covers them all.
        check_factory(base.policy.factory, "experiment.policy.factory")
        self._plan_stages(config, base)
        self._plan_branches(config, base)
        self.record_machine = profiles.flag(config, "record_machine", True)
        # Pipelines stored under results/<profile>/archive stand in for running them (pipeline.orchestration.archive).
        self.use_archive = profiles.flag(config, "use_archive", True)
        self._plan_best_responses(config, base)
        self._n_agents = {e: self._validated(e, self.seeds_of(e)[0], "experiment").economy for e in self.economies}
        for economy in self.economies:
            for seed in self.seeds_of(economy):
                for kind in CONFIG_KINDS:
                    if self.ablation or not kind.startswith("ablation"):
                        self._validated(economy, seed, kind)

    def _plan_stages(self, config: dict, base: ExperimentConfig) -> None:
        """Which curriculum stages every branch shares (the prefix) and which each branch trains itself."""
        stages = [s.name for s in base.curriculum.stages]
        n_prefix = config.get("prefix_stages", 2)
        if isinstance(n_prefix, bool) or not isinstance(n_prefix, int) or not 0 < n_prefix < len(stages):
            fail("prefix_stages", n_prefix,
                 f"an integer from 1 to {len(stages) - 1} (the curriculum has {len(stages)} stages)")
        self.stages = stages
        self.prefix_stages = stages[:n_prefix]
        self.branch_stages = stages[n_prefix:]
        for stage in base.curriculum.stages[:n_prefix]:
            if "government" in stage.train:
                fail("prefix_stages", n_prefix, "only stages where the government does not train can be shared")

    def _plan_branches(self, config: dict, base: ExperimentConfig) -> None:
        """The learned-tax branches, the fixed-tax baselines (equal rates and the grid) and the ablation."""
        self.branches: dict[str, Branch] = {"learned": Branch("learned")}
        cap = config.get("consumer_welfare_max_corporate_tax")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0 <= cap <= 1):
            fail("consumer_welfare_max_corporate_tax", cap, "null (no cap) or a rate in [0, 1]")
        if profiles.flag(config, "consumer_welfare_branch", True):
            self.branches["consumer_welfare"] = Branch(
                "consumer_welfare", welfare="consumer_only", max_corporate_tax=None if cap is None else float(cap)
            )
        taxes = numbers_from_text(config.get("fixed_taxes", [0.2, 0.4, 0.6, 0.8]), float)
        if not isinstance(taxes, list):
            fail("fixed_taxes", taxes, "a list of tax rates on the tax grids")
        for rate in taxes:
            if not on_tax_grids(base.economy, rate):
                fail("fixed_taxes", taxes, f"rates on both tax grids {base.economy.income_tax_grid}")
            self._add_fixed_branch(float(rate), float(rate))
        self.fixed_taxes = [float(rate) for rate in taxes]  # the equal-rate list (the paper's design)
        # Economy -> fixed-tax branches it runs: the equal rates everywhere, the grid where asked.
        self._fixed_of = {economy: [b for b in self.branches if self.branches[b].fixed_tax is not None]
                          for economy in self.economies}
        self.tax_grid = _tax_grid(config.get("tax_grid"), base.economy, self.economies)
        for economy in self.tax_grid["economies"] if self.tax_grid else ():
            for income in self.tax_grid["income"]:
                for corporate in self.tax_grid["corporate"]:
                    name = self._add_fixed_branch(income, corporate)
                    if name not in self._fixed_of[economy]:
                        self._fixed_of[economy].append(name)
        self.ablation = profiles.flag(config, "ablation", True)

    def _plan_best_responses(self, config: dict, base: ExperimentConfig) -> None:
        """Which types, branches and probes (learners, power check, one agent alone) the best responses run."""
        self.best_response_types = config.get("best_response_types", list(GROUPS))
        if not isinstance(self.best_response_types, list) or any(t not in GROUPS for t in self.best_response_types):
            fail("best_response_types", self.best_response_types, f"a list of groups from {list(GROUPS)}")
        self.best_response_branches = config.get("best_response_branches", ["learned"])
        if not isinstance(self.best_response_branches, list) or any(
            b not in self.branches or self.branches[b].fixed_tax is not None for b in self.best_response_branches
        ):
            fail("best_response_branches", self.best_response_branches,
                 f"learned-tax branches from {[b for b, v in self.branches.items() if v.fixed_tax is None]}")
        self.best_response_learners = base.best_response.learner_names()
        self.best_response_power = profiles.flag(config, "best_response_power", False)
        self.best_response_individual = config.get("best_response_individual", [])
        if not isinstance(self.best_response_individual, list) or any(
            t not in ("consumer", "firm") or t not in self.best_response_types for t in self.best_response_individual
        ):
            fail("best_response_individual", self.best_response_individual,
                 f"a list of types from {[t for t in self.best_response_types if t != 'government']} "
                 "(types of several agents that have a best response)")

    def _add_fixed_branch(self, income: float, corporate: float) -> str:
        """The branch of a fixed-tax baseline, added once: "fixed20" for equal rates, "fixed00c40" otherwise."""
        label = f"fixed{round(income * 100):02d}"
        name = label if abs(income - corporate) < 1e-9 else f"{label}c{round(corporate * 100):02d}"
        if name not in self.branches:
            self.branches[name] = Branch(
                name, fixed_tax=income, fixed_corporate_tax=None if name == label else corporate
            )
        return name

    def seeds_of(self, economy: str) -> list[int]:
        """The economy's seeds: `economy_seeds[economy]` where given, else `seeds`."""
        return self._economy_seeds.get(economy, self.seeds)

    def branches_of(self, economy: str) -> list[str]:
        """The economy's branches after the prefix: learned governments, then its fixed-tax baselines."""
        learned = [b for b, branch in self.branches.items() if branch.fixed_tax is None]
        return learned + self._fixed_of[economy]

    def pipelines(self) -> list[tuple[str, int]]:
        return [(economy, seed) for economy in self.economies for seed in self.seeds_of(economy)]

    # ------------------------------------------------------------------ best responses
    def best_response_probes(self, group: str) -> list[str]:
        """The searches run for one type: one per learner (the gap is their largest gain), the power check, and,
        for types of several agents, one agent deviating alone ("agent_<learner>", with the first learner)."""
        probes = list(self.best_response_learners)
        if self.best_response_power:
            probes.append(POWER)
        if group in self.best_response_individual:
            probes.append(f"{INDIVIDUAL}{self.best_response_learners[0]}")
        return probes

    def deviating_agent(self, economy: str, seed: int, group: str) -> int:
        """The agent that deviates alone: another one for each seed, spread over the whole type.

        Agents of a type differ by index (consumer j's dislike of work falls with j, firms 0-4 start with
        less capital), so the seed's agent is read off the golden-ratio sequence, seed 0 at the middle of
        the type: any run of consecutive seeds lands in different parts of it (seeds 0-4: consumers
        50, 11, 73, 35, 97). Seed modulo the type's size would send seeds 0-4 to consumers 0-4, who dislike
        work the most: in a trained open economy none of them works, and every level of hours lowers
        their reward, so their deviation tests one choice they have no reason to change.
        """
        economy_config = self._n_agents[economy]
        n_agents = economy_config.n_consumers if group == "consumer" else economy_config.n_firms
        return int((seed * GOLDEN_FRACTION + 0.5) % 1.0 * n_agents)

    def best_response_flags(self, economy: str, seed: int, group: str, probe: str) -> str:
        if probe == POWER:
            return f"--learner {self.best_response_learners[0]} --start untrained"
        if probe.startswith(INDIVIDUAL):
            learner = probe.removeprefix(INDIVIDUAL)
            return f"--learner {learner} --agent {self.deviating_agent(economy, seed, group)}"
        return f"--learner {probe}"

    # ------------------------------------------------------------------ experiment configs
    def experiment_id(self, economy: str) -> str:
        return profiles.experiment_id(self.profile, economy)

    def pipeline_id(self, economy: str, seed: int) -> str:
        return profiles.pipeline_id(self.profile, economy, seed)

    def tracking_config(self, economy: str, seed: int):
        """The pipeline's tracking settings (its parent run's experiment and id), as its rules resolve them."""
        return self._validated(economy, seed, "train").tracking

    def experiment_dict(self, economy: str, seed: int, kind: str = "train") -> dict:
        """The resolved experiment config a rule of `kind` reads (pipeline.profiles.experiment_dict)."""
        return profiles.experiment_dict(self._config, economy, seed, kind)

    def config_text(self, economy: str, seed: int, kind: str) -> str:
        return yaml.safe_dump(self.experiment_dict(economy, seed, kind), sort_keys=True)

    def _validated(self, economy: str, seed: int, kind: str) -> ExperimentConfig:
        return profiles.validated(self._config, economy, seed, None if kind == "experiment" else kind)

    # ------------------------------------------------------------------ the DAG
    def branch_of_stage(self, stage: str, economy: str | None = None) -> list[str]:
        if stage in self.prefix_stages:
            return [PREFIX]
        return list(self.branches) if economy is None else self.branches_of(economy)

    def previous_stage(self, stage: str) -> str | None:
        index = self.stages.index(stage)
        return self.stages[index - 1] if index else None

    def final_stage(self) -> str:
        return self.stages[-1]

    def evaluated_branches(self, economy: str | None = None) -> list[str]:
        branches = list(self.branches) if economy is None else self.branches_of(economy)
        return branches + ([ABLATION] if self.ablation else [])

    def config_kinds(self) -> list[str]:
        """The resolved config files every pipeline's rules read."""
        return [kind for kind in CONFIG_KINDS if self.ablation or not kind.startswith("ablation")]

    def result_files(self, economy: str) -> list[str]:
        """What the report reads of one pipeline, relative to its directory: evaluations, training metrics and
        best-response results and curves (never checkpoints)."""
        files = [f"{branch}/evaluation.json" for branch in self.evaluated_branches(economy)]
        for stage in self.stages:
            files += [f"{branch}/{stage}.metrics.csv" for branch in self.branch_of_stage(stage, economy)]
        if self.ablation:
            files.append(f"{ABLATION}/{ABLATION}.metrics.csv")
        for branch in self.best_response_branches:
            for group in self.best_response_types:
                for probe in self.best_response_probes(group):
                    base = f"{branch}/best_response/{group}/{probe}"
                    files += [f"{base}/best_response.json", f"{base}/curve.csv"]
        return files


def _tax_grid(given: Any, economy: RBCConfig, economies: dict) -> dict | None:
    """`tax_grid`: fixed-tax baselines at every (income, corporate) pair of two rate lists, for some economies."""
    if given is None:
        return None
    if not isinstance(given, dict) or set(given) - {"income", "corporate", "economies"}:
        fail("tax_grid", given, "null or a mapping with keys income, corporate (rate lists) and economies (optional)")
    grid = {"economies": given.get("economies", list(economies))}
    if not isinstance(grid["economies"], list) or any(e not in economies for e in grid["economies"]):
        fail("tax_grid.economies", grid["economies"], f"a list of this profile's economies {list(economies)}")
    for kind, points in (("income", economy.income_tax_grid), ("corporate", economy.corporate_tax_grid)):
        rates = numbers_from_text(given.get(kind), float)
        if not isinstance(rates, list) or not rates or not all(
            not isinstance(r, bool) and isinstance(r, (int, float)) and any(abs(p - r) < 1e-9 for p in points)
            for r in rates
        ):
            fail(f"tax_grid.{kind}", rates, f"a non-empty list of rates on the {kind} tax grid {points}")
        grid[kind] = [float(r) for r in rates]
    return grid


def on_tax_grids(economy: RBCConfig, rate: Any) -> bool:
    """Whether a fixed-tax baseline's rate is a point of both tax grids.

    The same test as envs.rbc.actions.fixed_tax_action, without importing torch: every Snakemake
    invocation builds the plan, and the planning should not cost seconds.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        return False
    return all(any(abs(point - rate) < 1e-9 for point in grid)
               for grid in (economy.income_tax_grid, economy.corporate_tax_grid))
