"""The plan's fixed-tax grid and per-economy seeds, checked against hand-written expectations."""

from __future__ import annotations

import pytest
import yaml

from envs.rbc.config import ConfigError
from pipeline.orchestration.plan import WorkflowPlan

from conftest import ROOT

DEFAULT = ROOT / "workflow" / "config" / "default.yaml"


@pytest.fixture
def config() -> dict:
    data = yaml.safe_load(DEFAULT.read_text())
    data.pop("tax_grid", None)
    data.pop("economy_seeds", None)
    return {**data, "fixed_taxes": [0.2, 0.4, 0.6, 0.8], "seeds": [0, 1, 2]}


def test_the_grid_adds_every_income_corporate_pair_once_and_only_where_asked(config):
    plan = WorkflowPlan({**config, "tax_grid": {"income": [0, 0.2], "corporate": [0, 0.2, 0.4],
                                                "economies": ["open"]}})
    # equal pairs are the paper's baselines (fixed00 is new, fixed20 exists already); the rest are named by both
    assert plan.branches_of("open") == ["learned", "consumer_welfare", "fixed20", "fixed40", "fixed60", "fixed80",
                                        "fixed00", "fixed00c20", "fixed00c40", "fixed20c00", "fixed20c40"]
    assert plan.branches_of("closed") == ["learned", "consumer_welfare", "fixed20", "fixed40", "fixed60", "fixed80"]
    assert plan.branches["fixed00c40"].fixed_rates == (0.0, 0.4)
    assert plan.branches["fixed20c00"].cli_flags() == "--fixed-tax 0.2 --fixed-corporate-tax 0.0"
    assert plan.branches["fixed40"].cli_flags() == "--fixed-tax 0.4"
    assert plan.evaluated_branches("closed")[-1] == "nocurriculum"


def test_economy_seeds_replace_the_seed_list_of_one_economy(config):
    plan = WorkflowPlan({**config, "economy_seeds": {"closed": [0, 1]}})
    assert plan.seeds_of("open") == [0, 1, 2] and plan.seeds_of("closed") == [0, 1]
    assert plan.pipelines() == [("open", 0), ("open", 1), ("open", 2), ("closed", 0), ("closed", 1)]


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("tax_grid", {"income": [0.25], "corporate": [0]}, "tax_grid.income"),
        ("tax_grid", {"income": [0], "corporate": []}, "tax_grid.corporate"),
        ("tax_grid", {"income": [0], "corporate": [0], "economies": ["moon"]}, "tax_grid.economies"),
        ("tax_grid", {"income": [0], "corporate": [0], "rates": 1}, "tax_grid"),
        ("economy_seeds", {"moon": [0]}, "economy_seeds.moon"),
        ("economy_seeds", {"closed": []}, "economy_seeds.closed"),
        ("economy_seeds", [0, 1], "economy_seeds"),
    ],
)
def test_bad_grid_and_seed_values_name_the_key(config, key, value, named):
    with pytest.raises(ConfigError) as err:
        WorkflowPlan({**config, key: value})
    assert f"{named}=" in str(err.value)


def test_grid_rates_from_snakemakes_command_line_are_numbers(config):
    from snakemake.cli import parse_config

    given = parse_config(["tax_grid={'income': [0, 0.2], 'corporate': [0.4]}"])
    plan = WorkflowPlan({**config, **given})
    assert plan.branches["fixed00c40"].fixed_rates == (0.0, 0.4)
    assert plan.branches["fixed20c40"].fixed_rates == (0.2, 0.4)


def test_best_response_probes_per_type(config):
    plan = WorkflowPlan({**config, "best_response_power": True, "best_response_individual": ["consumer", "firm"]})
    learners = plan.best_response_learners
    assert plan.best_response_probes("consumer") == [*learners, "power", f"agent_{learners[0]}"]
    assert plan.best_response_probes("government") == [*learners, "power"]
    # the deviating agent of seed s is floor(frac(0.5 + 0.618034 s) x agents), by hand for seeds 0-4
    assert [plan.deviating_agent("open", s, "consumer") for s in range(5)] == [50, 11, 73, 35, 97]
    assert [plan.deviating_agent("open", s, "firm") for s in range(5)] == [5, 1, 7, 3, 9]
    assert plan.best_response_flags("open", 13, "firm", "power") == f"--learner {learners[0]} --start untrained"
    assert plan.best_response_flags("open", 1, "consumer", f"agent_{learners[0]}") == f"--learner {learners[0]} --agent 11"


def test_the_deviating_agents_of_consecutive_seeds_spread_over_the_type(config):
    """Any five consecutive seeds probe consumers at least a tenth of the type apart (seed % 100 would put them
    next to each other: consumers 0-4 for seeds 0-4, the five who dislike work the most)."""
    plan = WorkflowPlan(config)
    for first in range(100):
        agents = sorted(plan.deviating_agent("open", s, "consumer") for s in range(first, first + 5))
        assert min(b - a for a, b in zip(agents, agents[1:])) >= 10, (first, agents)
    with pytest.raises(ConfigError, match="best_response_individual="):
        WorkflowPlan({**config, "best_response_individual": ["government"]})
