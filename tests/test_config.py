"""RBCConfig: the spec's numbers as defaults, YAML round trips and helpful rejection of bad values."""

from __future__ import annotations

import re

import pytest

from envs.rbc.config import ConfigError, RBCConfig
from envs.rbc.dynamics import pareto_labor_disutility


def test_defaults_are_the_reference_economy():
    c = RBCConfig()
    # spec 1.1, 1.2
    assert (c.n_consumers, c.n_firms, c.episode_length) == (100, 10, 10)
    # spec 2
    assert c.consumption_grid == [float(k) for k in range(11)]
    assert c.hours_grid == [0, 260, 520, 780, 1040]
    assert c.price_grid == [0, 500, 1000, 1500, 2000, 2500]
    assert c.wage_grid == [0, 11, 22, 33, 44]
    assert c.income_tax_grid == c.corporate_tax_grid == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert c.investment_fraction == 0.1
    assert c.consumer_head_sizes == [11] * 10 + [5, 10]
    assert (c.n_firm_actions, c.n_government_actions) == (30, 36)
    # spec 1.3 and 11
    assert c.alpha == [0.2, 0.3, 0.4, 0.6, 0.8, 0.2, 0.3, 0.4, 0.6, 0.8]
    assert c.initial_capital == [5000.0] * 5 + [10000.0] * 5
    assert c.initial_consumer_budget == 2000
    assert c.initial_firm_budget == 2_200_000 == 22 * 1000 * 100
    assert (c.initial_price, c.initial_wage, c.initial_inventory) == (1000, 0, 0)
    assert (c.initial_income_tax, c.initial_corporate_tax) == (0, 0)
    assert (c.productivity, c.crra_eta, c.labor_disutility, c.pareto_shape) == (0.01, 0.1, 0.01, 4.0)
    assert (c.interest_rate, c.labor_floor) == (0, 0)
    assert c.open_economy is True
    assert (c.export_min_price, c.export_quantity_cap) == (500, 100)
    # spec 13 decisions
    assert c.export_price_inclusive is True  # p >= p_exp
    assert c.investment_rule == "operating_income"
    assert c.labor_disutility_scale == 0.5  # (theta/2) * hours
    assert c.consumer_budget_guard == 0.0
    assert c.welfare == "total" and c.firm_welfare_weight == 0.0025 and c.welfare_firm_weight == 0.0025
    assert RBCConfig(welfare="consumer_only").welfare_firm_weight == 0.0
    assert c.observation_encoding in ("digits", "symlog")
    # spec 5.4: the penalty machinery is present but off
    assert (c.consumer_no_ponzi_multiplier, c.firm_no_ponzi_multiplier) == (0, 0)
    assert (c.consumer_penalty_scale, c.firm_penalty_scale) == (1, 100)


def test_labor_disutility_matches_spec_table():
    theta = pareto_labor_disutility(RBCConfig())
    # spec 1.3 table: theta_j = 0.01 * (1 - j/100)^(1/4)
    expected = {0: 0.01000, 25: 0.00931, 50: 0.00841, 75: 0.00707, 90: 0.00562, 99: 0.00316}
    for j, value in expected.items():
        assert theta[j].item() == pytest.approx(value, abs=5e-6), j
    assert theta.mean().item() == pytest.approx(0.00804, abs=5e-6)
    assert bool((theta[1:] < theta[:-1]).all())  # consumer 0 dislikes work the most


def test_yaml_round_trip(tmp_path):
    default = RBCConfig()
    assert RBCConfig.from_yaml_text(default.to_yaml()) == default
    custom = RBCConfig(
        n_consumers=7,
        n_firms=3,
        alpha=[0.25, 0.5, 0.75],
        initial_capital=[1.0, 2.0, 3.0],
        open_economy=False,
        observation_encoding="digits",
        welfare="consumer_only",
        investment_rule="budget",
        price_grid=[10, 20],
        firm_no_ponzi_multiplier=0.5,
    )
    path = tmp_path / "economy.yaml"
    custom.to_yaml(path)
    loaded = RBCConfig.from_yaml(path)
    assert loaded == custom
    assert loaded.to_dict() == custom.to_dict()
    assert loaded.alpha == [0.25, 0.5, 0.75] and loaded.open_economy is False


def test_per_firm_lists_follow_the_firm_count():
    small = RBCConfig(n_firms=4)
    assert len(small.alpha) == len(small.initial_capital) == 4
    assert all(0 < a < 1 for a in small.alpha)
    assert RBCConfig().replace(n_firms=3).alpha is not None
    assert len(RBCConfig().replace(n_firms=3).initial_capital) == 3
    assert RBCConfig().replace(n_consumers=5).alpha == RBCConfig().alpha


BAD_VALUES = [
    # field, bad value, a piece of the "allowed" text
    ("n_firms", 0, "positive integer"),
    ("n_consumers", -3, "positive integer"),
    ("episode_length", 2.5, "positive integer"),
    ("n_firms", True, "positive integer"),
    ("alpha", [0.2, 0.3], "list of 10"),
    ("alpha", [0.5] * 9 + [1.0], "between 0 and 1"),
    ("initial_capital", [5000.0] * 9, "list of 10"),
    ("initial_capital", [5000.0] * 9 + [0.0], "capital > 0"),
    ("price_grid", [-500.0, 0.0, 500.0], ">= 0"),
    ("wage_grid", [0.0, 22.0, 11.0], "increasing"),
    ("hours_grid", [], "non-empty"),
    ("income_tax_grid", [0.0, 0.5, 1.5], "[0, 1]"),
    ("observation_encoding", "binary", "digits"),
    ("welfare", "gdp", "consumer_only"),
    ("investment_rule", "capital", "operating_income"),
    ("crra_eta", 1.0, "[0, 1)"),
    ("initial_income_tax", 1.2, "[0, 1]"),
    ("labor_disutility_anneal", -0.1, "[0, 1]"),
    ("export_min_price", -1.0, ">= 0"),
    ("initial_consumer_budget", float("nan"), ">= 0"),
    ("open_economy", "yes", "true or false"),
    ("firm_penalty_scale", 0.0, "> 0"),
]


@pytest.mark.parametrize("field, value, allowed", BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_bad_value_names_field_value_and_allowed(field, value, allowed):
    with pytest.raises(ConfigError) as info:
        RBCConfig(**{field: value})
    message = str(info.value)
    assert field in message
    assert repr(value) in message or str(value) in message
    assert allowed in message
    # the same through a mapping, as loaded from YAML
    with pytest.raises(ConfigError):
        RBCConfig.from_dict({field: value})


def test_unknown_keys_are_rejected_with_the_allowed_keys():
    with pytest.raises(ConfigError) as info:
        RBCConfig.from_dict({"n_firm": 3})
    assert "n_firm" in str(info.value) and "n_firms" in str(info.value)
    with pytest.raises(ConfigError) as info:
        RBCConfig.from_yaml_text("n_consumers: 5\ncapital_depreciation: 0.1\n")
    assert "capital_depreciation" in str(info.value)


def test_yaml_must_be_a_mapping():
    with pytest.raises(ConfigError):
        RBCConfig.from_yaml_text("- 1\n- 2\n")
    assert RBCConfig.from_yaml_text("") == RBCConfig()


def test_bad_value_in_yaml_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("n_firms: 3\nalpha: [0.2, 0.4]\n")
    with pytest.raises(ConfigError) as info:
        RBCConfig.from_yaml(path)
    assert "alpha" in str(info.value) and "[0.2, 0.4]" in str(info.value) and "list of 3" in str(info.value)


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    """YAML 1.1 reads 5e-5 as text; the project's loaders read it as the number its author meant."""
    from pipeline.config import ExperimentConfig, apply_overrides

    assert apply_overrides({}, ["training.learning_rate.government=5e-5"]) == {
        "training": {"learning_rate": {"government": 5e-5}}
    }
    path = tmp_path / "experiment.yaml"
    path.write_text("training:\n  learning_rate: {consumer: 3e-3, firm: 1E-4, government: 5e-4}\n")
    assert ExperimentConfig.load(path).training.learning_rate == {"consumer": 3e-3, "firm": 1e-4, "government": 5e-4}
    assert RBCConfig.from_yaml_text("export_min_price: 5e2\n").export_min_price == 500.0


def test_numeric_text_gets_a_hint():
    from pipeline.config import ExperimentConfig

    with pytest.raises(ConfigError, match=r"training\.gamma='0\.9e0'.*5\.0e-5"):
        ExperimentConfig.from_dict({"training": {"gamma": "0.9e0"}})


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "{}\n", "economy:\ntraining: {}\n", "null\n"])
def test_an_experiment_file_that_sets_nothing_is_refused_naming_it(tmp_path, text):
    """Read as defaults, it would start the paper's full-scale run (200,000 episodes) without a word."""
    from pipeline.config import ExperimentConfig

    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.load(path, ["training.seed=1"])
    assert str(err.value).startswith(f"config file {path} sets no value")
    assert "200,000 episodes" in str(err.value)


@pytest.mark.parametrize("text, says", [
    ("- training\n", "is not a mapping of sections"),
    ("just words\n", "is not a mapping of sections"),
    ("profile: mine\nexperiment: {training: {seed: 1}}\n", "is a workflow profile"),
])
def test_an_experiment_file_of_another_shape_is_refused_naming_it(tmp_path, text, says):
    from pipeline.config import ExperimentConfig

    path = tmp_path / "other.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(str(path))} {says}"):
        ExperimentConfig.load(path)
