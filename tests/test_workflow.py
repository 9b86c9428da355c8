"""The Snakemake workflow: its plan, its rules and the smoke DAG run end to end.

Profile validation and the report's arithmetic are checked in process. Everything else drives the
`snakemake` command in a temporary working directory, as a user would: dry-runs of the default and
smoke profiles, the linter, and one real run of the smoke DAG logging to an MLflow tracking
server started on loopback for the module; the later tests read what that run left behind (the
results tree, the report, the runs on the server) and run Snakemake again on it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from envs.rbc.config import ConfigError
from pipeline.orchestration.plan import ABLATION, PREFIX, WorkflowPlan

from workflow_support import (
    DEFAULT,
    ROOT,
    SMOKE,
    assert_complete_tree,
    expected_jobs,
    job_counts,
    load,
    merged,
    snakemake,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------- the plan
@pytest.fixture
def default_config() -> dict:
    return load(DEFAULT)


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("seeds", [], "seeds"),
        ("seeds", [0, -1], "seeds"),
        ("seeds", "0", "seeds"),
        ("seeds", ["0", "one"], "seeds"),
        ("fixed_taxes", ["0.2", "high"], "fixed_taxes"),
        ("fixed_taxes", [0.2, 0.25], "fixed_taxes"),
        ("fixed_taxes", [1.5], "fixed_taxes"),
        ("prefix_stages", 0, "prefix_stages"),
        ("prefix_stages", 4, "prefix_stages"),  # the default curriculum has 4 stages: one must remain per branch
        ("threads_per_job", 0, "threads_per_job"),
        ("consumer_welfare_max_corporate_tax", 1.5, "consumer_welfare_max_corporate_tax"),
        ("consumer_welfare_max_corporate_tax", "half", "consumer_welfare_max_corporate_tax"),
        ("best_response_types", ["bank"], "best_response_types"),
        ("best_response_branches", ["fixed20"], "best_response_branches"),
        ("economies", {"open": [1]}, "economies.open"),
        ("profile", "a/b", "profile"),
        ("unknown_key", 1, "unknown_key"),
    ],
)
def test_bad_profile_values_fail_naming_the_key(default_config, key, value, named):
    config = {**default_config, key: value}
    with pytest.raises(ConfigError) as err:
        WorkflowPlan(config)
    assert f"{named}=" in str(err.value)


def test_lists_from_snakemakes_command_line_are_read_as_numbers(default_config):
    # `snakemake --config seeds=[0,1]` hands every list item over as text (YAML base loader)
    from snakemake.cli import parse_config

    given = parse_config(["seeds=[0,1]", "fixed_taxes=[0.2,0.8]"])
    assert given["seeds"] == ["0", "1"]
    plan = WorkflowPlan({**default_config, **given})
    assert plan.seeds == [0, 1]
    assert plan.fixed_taxes == [0.2, 0.8]


def test_corporate_cap_reaches_only_the_consumer_welfare_branch(default_config):
    plan = WorkflowPlan({**default_config, "consumer_welfare_max_corporate_tax": 0.4})
    assert "--max-corporate-tax 0.4" in plan.branches["consumer_welfare"].cli_flags()
    others = [b for name, b in plan.branches.items() if name != "consumer_welfare"]
    assert others and not any("--max-corporate-tax" in b.cli_flags() for b in others)
    assert "--max-corporate-tax" not in WorkflowPlan({**default_config, "consumer_welfare_max_corporate_tax": None}
                                                     ).branches["consumer_welfare"].cli_flags()


def test_prefix_may_hold_every_stage_before_the_government_trains(default_config):
    plan = WorkflowPlan({**default_config, "prefix_stages": 3})
    assert plan.prefix_stages == ["consumers", "firms", "taxes"] and plan.branch_stages == ["government"]
    curriculum = copy.deepcopy(default_config["experiment"]["curriculum"])
    curriculum["stages"][1]["train"].append("government")  # the government now trains in the second stage
    config = {**default_config, "experiment": {**default_config["experiment"], "curriculum": curriculum}}
    with pytest.raises(ConfigError, match="prefix_stages=2"):
        WorkflowPlan(config)


@pytest.mark.parametrize(
    "path, value, named",
    [
        (("training", "ppo_epochs"), 0, "experiment.training.ppo_epochs"),
        (("training", "algorithm"), "sac", "experiment.training.algorithm"),
        (("training", "backend"), "tpu", "experiment.training.backend"),
        (("economy", "observation_encoding"), "binary", "experiment.economy.observation_encoding"),
        (("evaluation", "episodes"), 0, "experiment.evaluation.episodes"),
        (("best_response", "window"), -1, "experiment.best_response.window"),
        (("policy", "bf16"), "fast", "experiment.policy.bf16"),
    ],
)
def test_bad_experiment_values_fail_naming_the_full_key(default_config, path, value, named):
    config = copy.deepcopy(default_config)
    config["experiment"].setdefault(path[0], {})[path[1]] = value
    with pytest.raises(ConfigError) as err:
        WorkflowPlan(config)
    assert named in str(err.value)


def test_a_bad_value_in_one_economy_is_reported_with_that_economy(default_config):
    config = copy.deepcopy(default_config)
    config["economies"]["closed"]["n_firms"] = 0
    with pytest.raises(ConfigError) as err:
        WorkflowPlan(config)
    assert "experiment.economy.n_firms" in str(err.value) and "'closed'" in str(err.value)


def test_fixed_tax_check_of_the_plan_agrees_with_the_environment():
    from envs.rbc.actions import fixed_tax_action
    from envs.rbc.config import RBCConfig
    from pipeline.orchestration.plan import on_tax_grids

    economy = RBCConfig(income_tax_grid=[0.0, 0.3, 0.6, 0.9], corporate_tax_grid=[0.0, 0.3, 0.5, 0.9])
    for rate in (0.0, 0.3, 0.5, 0.6, 0.9, 0.3 + 1e-12, 0.31, 1.0, -0.3, "0.3", True, None):
        try:
            fixed_tax_action(economy, rate, rate)
            accepted = True
        except (ValueError, TypeError):
            accepted = False
        assert on_tax_grids(economy, rate) == (accepted and not isinstance(rate, (bool, str))), rate


def test_planning_does_not_import_torch():
    """Every snakemake call builds the plan; loading torch there would cost seconds per call."""
    code = "import sys, pipeline.orchestration.plan; assert 'torch' not in sys.modules, 'torch was imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_default_plan_shares_the_tax_free_stages_and_branches_after_them(default_config):
    plan = WorkflowPlan(default_config)
    assert plan.prefix_stages == ["consumers", "firms"] and plan.branch_stages == ["taxes", "government"]
    assert list(plan.branches)[:6] == ["learned", "consumer_welfare", "fixed20", "fixed40", "fixed60", "fixed80"]
    # the income x corporate grid adds every pair the equal rates do not already hold, in both economies
    grid = {(i, c) for i in (0.0, 0.2, 0.4) for c in (0.0, 0.2, 0.4, 0.6)}
    for economy in ("open", "closed"):
        rates = {plan.branches[b].fixed_rates for b in plan.branches_of(economy) if plan.branches[b].fixed_rates}
        assert rates == grid | {(r, r) for r in (0.2, 0.4, 0.6, 0.8)}
    assert plan.seeds_of("open") == [0, 1, 2, 3, 4] and plan.seeds_of("closed") == [0, 1]
    assert plan.branch_of_stage("firms") == [PREFIX]
    assert plan.previous_stage("taxes") == "firms" and plan.previous_stage("consumers") is None
    assert plan.evaluated_branches()[-1] == ABLATION
    # the ablation trains every type for as many episodes as the whole curriculum
    ablation = plan.experiment_dict("open", 0, "ablation_train")["curriculum"]
    assert ablation["stages"] == [{"name": ABLATION, "episodes": 3000, "train": ["consumer", "firm", "government"]}]
    # each rule kind reads only the sections it depends on
    assert "evaluation" not in plan.experiment_dict("open", 0, "train")
    assert "best_response" not in plan.experiment_dict("open", 0, "evaluate")


def test_profiles_differ_from_default_only_where_they_say(default_config):
    smoke = WorkflowPlan(merged(DEFAULT, SMOKE))
    assert smoke.profile == "smoke" and list(smoke.economies) == ["open"] and smoke.pipelines() == [("open", 0)]
    assert [b for b in smoke.branches if b.startswith("fixed")] == ["fixed20", "fixed80", "fixed00c40"]
    assert "fixed00c40" in smoke.branches_of("open")
    assert smoke.experiment_dict("open", 0)["economy"] == {"n_consumers": 4, "n_firms": 2, "open_economy": True}
    paper = WorkflowPlan(merged(DEFAULT, ROOT / "workflow" / "config" / "paper.yaml"))
    assert paper.seeds == [0, 1, 2] and paper.experiment["training"]["num_envs"] == 128
    # The default and smoke profiles use the firm-equivariant consumers; the paper profile the spec's network.
    default = WorkflowPlan(merged(DEFAULT))
    assert default.experiment["policy"]["factory"] == "pipeline.learning.equivariant:build"
    assert smoke.experiment["policy"]["factory"] == "pipeline.learning.equivariant:build"
    assert paper.experiment["policy"]["factory"] is None


# ---------------------------------------------------------------------------------------- dry-runs and lint
@pytest.mark.parametrize("profile", ["default", "smoke"])
def test_dry_run_shows_the_whole_plan(tmp_path, profile):
    files = [DEFAULT] if profile == "default" else [DEFAULT, SMOKE]
    args = ["-n", "--configfile", *map(str, files)]
    result = snakemake(tmp_path, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == expected_jobs(WorkflowPlan(merged(*files)))
    assert not (tmp_path / "results").exists()  # a dry-run writes nothing


def test_a_clone_with_the_committed_report_still_rebuilds_everything(tmp_path):
    """The repository carries results/default/summary.*; they must not make the main job a no-op."""
    committed = tmp_path / "results" / "default"
    (committed / "figures").mkdir(parents=True)
    for name in ("summary.md", "summary.json"):
        (committed / name).write_text("committed")
    for name in ("training_curves", "best_response", "welfare_vs_tax", "tax_grid", "rollout_firms",
                 "rollout_consumers"):
        (committed / "figures" / f"{name}.png").write_bytes(b"")
    result = snakemake(tmp_path, "-n", "--configfile", str(DEFAULT))
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == expected_jobs(WorkflowPlan(merged(DEFAULT)))


def test_default_configfile_is_found_from_any_working_directory(tmp_path):
    """Only the profile on the command line: default.yaml comes from next to the Snakefile."""
    result = snakemake(tmp_path, "-n", "--configfile", str(SMOKE))
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == expected_jobs(WorkflowPlan(merged(DEFAULT, SMOKE)))


@pytest.mark.parametrize("profile", ["default", "smoke"])
def test_lint_is_clean(tmp_path, profile):
    args = ["--lint"] + (["--configfile", str(SMOKE)] if profile == "smoke" else [])
    result = snakemake(tmp_path, *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Lints for" not in result.stdout + result.stderr


def test_bad_config_value_fails_before_any_rule_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiment": {"training": {"ppo_epochs": 0}}}))
    result = snakemake(tmp_path, "--cores", "1", "--configfile", str(SMOKE), str(bad))
    assert result.returncode != 0
    assert "experiment.training.ppo_epochs" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


# ---------------------------------------------------------------------------------------- the smoke DAG
@pytest.mark.slow
def test_smoke_dag_runs_every_job_of_the_plan(smoke_run):
    assert job_counts(smoke_run["output"]) == expected_jobs(smoke_run["plan"])
    results, plan = smoke_run["results"], smoke_run["plan"]
    for economy, seed in plan.pipelines():
        pipe = results / economy / f"seed{seed}"
        for branch in plan.evaluated_branches(economy):
            evaluation = json.loads((pipe / branch / "evaluation.json").read_text())
            assert evaluation["samples"] == 2 * 2  # evaluation.episodes x evaluation.num_envs of the smoke profile
        for stage in plan.prefix_stages:
            assert (pipe / PREFIX / f"{stage}.pt").exists() and not (pipe / "learned" / f"{stage}.pt").exists()
    # the tax grid's one unequal-rate baseline ran; the closed economy, set to null, did not
    assert (results / "open" / "seed0" / "fixed00c40" / "evaluation.json").exists()
    assert not (results / "closed").exists()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.slow
def test_smoke_report_welfare_is_read_from_every_evaluation(smoke_run):
    """Per-seed numbers are the evaluation files' own; the best fixed tax is the best of the files; with one seed
    no over-seed interval or verdict exists."""
    from pipeline.analysis.report.stats import ONE_SEED

    results, plan = smoke_run["results"], smoke_run["plan"]
    summary = read_json(results / "summary.json")
    for economy, seed in plan.pipelines():
        pipe, data = results / economy / f"seed{seed}", summary["economies"][economy]
        evaluations = {b: read_json(pipe / b / "evaluation.json") for b in plan.evaluated_branches(economy)}
        for branch, evaluation in evaluations.items():
            for name, key in (("welfare_total", "welfare/total"), ("welfare_consumer_only", "welfare/consumer_only")):
                samples = evaluation["economy_samples"][key]
                per_seed = data["outcomes"][branch][name]["per_seed"][str(seed)]
                assert per_seed["mean"] == pytest.approx(sum(samples) / len(samples))
                assert per_seed["n"] == len(samples) and per_seed["ci95"] == evaluation["metrics"][key]["ci95"]
                over = data["outcomes"][branch][name]["over_seeds"]
                assert over["seeds"] == 1 and over["ci95"] == [None, None] and over["sd"] is None
        fixed = [b for b in plan.branches_of(economy) if plan.branches[b].fixed_tax is not None]
        for policy, key in (("learned", "welfare/total"), ("consumer_welfare", "welfare/consumer_only")):
            of = {b: evaluations[b]["metrics"][key]["mean"] for b in fixed}
            fair, equal = data["welfare"][policy]["every_fixed"], data["welfare"][policy]["equal_rate"]
            assert fair["best"]["branch"] == max(of, key=of.get) and sorted(fair["candidates"]) == sorted(fixed)
            assert equal["best"]["branch"] == max(("fixed20", "fixed80"), key=of.get)
            row = fair["per_seed"][str(seed)]
            assert row["difference"] == pytest.approx(evaluations[policy]["metrics"][key]["mean"] - max(of.values()))
            assert fair["verdict"] == equal["verdict"] == ONE_SEED
        points = {(p["income"], p["corporate"]) for p in data["tax_grid"]["points"]}
        assert points == ({(0.2, 0.2), (0.8, 0.8), (0.0, 0.4)} if economy == "open" else {(0.2, 0.2), (0.8, 0.8)})
        assert data["ablation"]["welfare_total"]["verdict"] == ONE_SEED
        assert set(data["ablation"]["higher_by_seed"]) == {str(seed)}


@pytest.mark.slow
def test_smoke_report_gaps_are_the_largest_learner_gain_of_the_probe_files(smoke_run):
    from pipeline.analysis.report.epsilon import HAS_POWER, NO_POWER

    results, plan = smoke_run["results"], smoke_run["plan"]
    summary = read_json(results / "summary.json")
    bound = {"consumer": 0.03, "firm": 0.10, "government": 0.01}  # the paper's Table 3
    for economy, seed in plan.pipelines():
        for group in plan.best_response_types:
            base = results / economy / f"seed{seed}" / "learned" / "best_response" / group
            files = {p: read_json(base / p / "best_response.json") for p in plan.best_response_probes(group)}
            gains = {name: files[name]["gain"]["mean"] for name in plan.best_response_learners}
            entry = summary["economies"][economy]["epsilon"]["learned"][group]["per_seed"][str(seed)]
            assert entry["gap"]["mean"] == max(gains.values()) and entry["gap_learner"] == max(gains, key=gains.get)
            training = files[entry["gap_learner"]]["training_gain_vs_untrained"]
            if training["mean"] > 0 and training["ci95"][0] > 0:
                assert entry["relative"] == pytest.approx(max(gains.values()) / training["mean"])
            else:
                assert entry["relative"] is None and entry["relative_undefined"]
            power = files["power"]
            found = power["gain"]["ci95"][0] > 0 and power["gain"]["mean"] >= bound[group] * abs(
                power["trained"]["mean"])
            assert power["start"] == "untrained" and entry["power"]["verdict"] == (HAS_POWER if found else NO_POWER)
            if group in plan.best_response_individual:
                agent = plan.deviating_agent(economy, seed, group)
                assert entry["individual"]["agent"] == agent
                alone = [name for name in files if name.startswith("agent_")]
                assert alone and all(files[name]["metric"] == f"reward/{group}/agent{agent}" for name in alone)


@pytest.mark.slow
def test_smoke_report_has_its_figures_wall_time_and_sections(smoke_run):
    from matplotlib.image import imread

    from pipeline.analysis.report import FIGURES

    results, plan = smoke_run["results"], smoke_run["plan"]
    summary = read_json(results / "summary.json")
    machine = results / "machine.json"
    if machine.exists():  # copied whole, beside the wall time
        assert read_json(machine).items() <= summary["machine"].items()
    else:
        assert summary["machine"] is None and "Machine: no record" in (results / "summary.md").read_text()
    # the DAG's wall time from the benchmark records fits inside the measured run
    wall = summary["wall_time_s"]
    benchmarked = sum(n for job, n in expected_jobs(plan).items() if job.startswith(("train_", "evaluate", "best_")))
    assert wall["jobs"] == benchmarked
    assert 0 < wall["dag"] <= smoke_run["elapsed"] and wall["jobs_sum"] >= wall["longest_job"] > 0
    assert set(summary["figures"]) == set(FIGURES)
    rows = len(plan.economies)  # one row of panels per economy: the image's height grows with it
    for name, height in {"best_response": 4.2, "welfare_vs_tax": 3.9, "tax_grid": 5.2, "training_curves": 3.8}.items():
        image = imread(results / summary["figures"][name])
        assert image.shape[0] == round(height * rows * 110), name
        assert image[..., :3].std() > 0.05, name  # drawn, not blank
    text = (results / "summary.md").read_text()
    for heading in ("## Welfare (open economy)", "### Tax grid (open economy)", "### Learned tax rates",
                    "## Best-response gaps", "Per firm", "Curriculum vs no curriculum",
                    "Economic plausibility", "## Machine and wall time", "Consumers' answer to one firm's terms",
                    "## Definitions", "no statement over seeds is possible"):
        assert heading in text, heading
    # the economies are compared side by side only where the profile runs more than one
    assert ("Economies side by side" in text) == (len(plan.economies) > 1)


@pytest.mark.slow
def test_smoke_run_is_tracked_as_one_tree_per_pipeline(smoke_run):
    from mlflow.tracking import MlflowClient

    plan = smoke_run["plan"]
    client = MlflowClient(tracking_uri=smoke_run["uri"])
    names = {e.name for e in client.search_experiments()}
    assert {plan.experiment_id(e) for e in plan.economies} <= names
    summary = json.loads((smoke_run["results"] / "summary.json").read_text())

    for economy, seed in plan.pipelines():
        parent, children = assert_complete_tree(client, plan, economy, seed)
        assert parent.data.tags["dge.opened_by"] == "workflow"  # before any job, so no job raced to make one
        stage_run = next(r for r in children if r.data.tags["dge.rule"] == "train:learned:government")
        assert stage_run.data.params["config.training.num_envs"] == "2"
        assert len(client.get_metric_history(stage_run.info.run_id, "welfare/total")) >= 1
        check_headline(parent.data.metrics, summary["economies"][economy], str(seed))
        artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
        assert {"report/summary.md", "report/summary.json", "report/figures"} <= artifacts
        figures = {a.path for a in client.list_artifacts(parent.info.run_id, "report/figures")}
        assert {"report/figures/welfare_vs_tax.png", "report/figures/tax_grid.png"} <= figures


def check_headline(metrics: dict, economy: dict, seed: str) -> None:
    """A pipeline's parent run carries its seed's welfare against the economy's best fixed tax and its gaps."""
    learned = economy["welfare"]["learned"]
    row = learned["every_fixed"]["per_seed"][seed]
    assert metrics["summary/welfare_learned"] == pytest.approx(learned["policy"]["per_seed"][seed]["mean"])
    assert metrics["summary/welfare_best_fixed"] == pytest.approx(row["baseline"])
    assert metrics["summary/welfare_difference_learned_to_best_fixed"] == pytest.approx(row["difference"])
    if row["ratio"] is None:
        assert "summary/welfare_ratio_learned_to_best_fixed" not in metrics
    else:
        assert metrics["summary/welfare_ratio_learned_to_best_fixed"] == pytest.approx(row["ratio"])
    assert metrics["summary/welfare_consumer_only"] == pytest.approx(
        economy["welfare"]["consumer_welfare"]["policy"]["per_seed"][seed]["mean"])
    for group, e in economy["epsilon"]["learned"].items():
        assert metrics[f"summary/epsilon_absolute/{group}"] == pytest.approx(e["per_seed"][seed]["gap"]["mean"])
        if e["per_seed"][seed]["relative"] is not None:
            assert metrics[f"summary/epsilon_relative/{group}"] == pytest.approx(e["per_seed"][seed]["relative"])


@pytest.mark.slow
def test_second_run_does_nothing(smoke_run):
    stamps = {p: p.stat().st_mtime_ns for p in smoke_run["results"].rglob("*") if p.is_file()}
    result = snakemake(smoke_run["workdir"], "--cores", "all", "--configfile", str(DEFAULT), str(SMOKE),
                       env=smoke_run["env"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr
    assert {p: p.stat().st_mtime_ns for p in smoke_run["results"].rglob("*") if p.is_file()} == stamps


@pytest.mark.slow
def test_html_report_bundles_the_figures_with_their_captions(smoke_run):
    html = smoke_run["workdir"] / "report.html"
    result = snakemake(smoke_run["workdir"], "--configfile", str(DEFAULT), str(SMOKE), "--report", str(html),
                       env=smoke_run["env"])
    assert result.returncode == 0, result.stderr[-3000:]
    text = html.read_text()
    openings = {
        "training_curves": "Training curves of profile",
        "best_response": "Best-response analysis (paper, Fig. 4 and Table 3)",
        "welfare_vs_tax": "Fixed tax policies against the learned ones",
        "tax_grid": "Every fixed tax of each economy on the income x corporate plane",
        "rollout_firms": "One evaluated episode of the trained economy",
        "rollout_consumers": "The same episode as the firm rollout",
    }
    for name, opening in openings.items():
        assert f"{name}.png" in text, name
        assert (ROOT / "workflow" / "report" / f"{name}.rst").read_text().startswith(opening)
        assert opening in text, name
    assert "smoke</tt>" in text and "snakemake.config" not in text  # the caption's template was rendered


@pytest.mark.slow
def test_changing_the_evaluation_episodes_reruns_evaluations_and_report_only(smoke_run, tmp_path):
    change = tmp_path / "episodes.yaml"
    change.write_text(yaml.safe_dump({"experiment": {"evaluation": {"episodes": 3}}}))
    result = snakemake(smoke_run["workdir"], "-n", "--configfile", str(DEFAULT), str(SMOKE), str(change),
                       env=smoke_run["env"])
    assert result.returncode == 0, result.stderr[-3000:]
    plan = smoke_run["plan"]
    pipelines = len(plan.pipelines())
    assert job_counts(result.stdout + result.stderr) == {
        "resolve_config": pipelines * 2,  # evaluate.yaml and ablation_evaluate.yaml change; the others do not
        "workflow_config": 1,
        "evaluate": sum(len(plan.evaluated_branches(economy)) for economy, _ in plan.pipelines()),
        "report": 1,
        "all": 1,
        **({"machine": 1} if plan.record_machine else {}),
    }


# ---------------------------------------------------------------------------------------- parallel jobs, one parent
def test_jobs_that_race_to_create_the_parent_settle_on_one(tmp_path):
    """Two first jobs of a pipeline both miss the parent and create one; both must end on the same run."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import find_or_create_parent

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("race", artifact_location=(tmp_path / "artifacts").as_uri())
    query = "tags.`dge.pipeline` = 'p/seed0' and tags.`dge.role` = 'parent'"
    # the other job's parent, created a moment earlier, not yet visible to this job's first search
    other = client.create_run(experiment, run_name="p/seed0", start_time=int(time.time() * 1000) - 50,
                              tags={"dge.pipeline": "p/seed0", "dge.role": "parent"}).info.run_id

    class MissesFirstSearch:
        def __init__(self, inner):
            self.inner, self.searches = inner, 0

        def search_runs(self, *args, **kwargs):
            self.searches += 1
            return [] if self.searches == 1 else self.inner.search_runs(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    late = MissesFirstSearch(client)
    assert find_or_create_parent(late, experiment, "p/seed0") == other
    assert late.searches == 2  # it did create its own parent, then looked again
    assert [r.info.run_id for r in client.search_runs([experiment], query)] == [other]
    assert len(client.search_runs([experiment], query, run_view_type=ViewType.DELETED_ONLY)) == 1
    assert find_or_create_parent(client, experiment, "p/seed0") == other  # later jobs find the same one


# ---------------------------------------------------------------------------------------- the report's arithmetic
def test_a_firm_idle_in_one_seed_is_reported_although_the_pooled_mean_hides_it():
    from types import SimpleNamespace

    from pipeline.analysis.report import idle_firms, per_firm

    def samples(workers_firm1: float) -> dict:
        rows = [[3.0, workers_firm1], [4.0, workers_firm1]]  # two economy-episodes, two firms
        return {"firm_samples": {"workers": rows, "sales": [[1.0, 1.0]] * 2, "exports": [[1.0, 0.0]] * 2}}

    results = SimpleNamespace(seeds=lambda economy: [0, 1],
                              evaluations={("open", 0, "learned"): samples(0.0), ("open", 1, "learned"): samples(5.0)})
    pooled = per_firm(results, "open", "learned")
    assert pooled["workers"][1]["mean"] == pytest.approx(2.5) and idle_firms(pooled) == []
    assert idle_firms(per_firm(results, "open", "learned", [0])) == [1]
    assert idle_firms(per_firm(results, "open", "learned", [1])) == []
    assert per_firm(results, "open", "learned", [1])["domestic_share"] == pytest.approx([0.5, 1.0])


def test_relations_across_runs_take_one_point_per_producing_run():
    from types import SimpleNamespace

    from pipeline.analysis.report import across_runs

    def evaluation(price: float, consumption: float, production: float) -> dict:
        values = {"price": price, "consumption": consumption, "production": production, "wage": 10.0,
                  "hours": 100.0 + price / 100}
        return {"metrics": {f"economy/{k}": {"mean": v, "ci95": [v, v]} for k, v in values.items()}}

    runs = {("open", 0, "learned"): evaluation(2000.0, 2.0, 90.0),
            ("open", 0, "fixed20"): evaluation(1500.0, 3.0, 80.0),
            ("open", 1, "learned"): evaluation(1000.0, 4.0, 70.0),
            ("open", 1, "fixed20"): evaluation(500.0, 5.5, 85.0),
            ("open", 0, "fixed80"): evaluation(1200.0, 0.0, 0.0),  # collapsed: no market, no point
            ("open", 1, "fixed80"): evaluation(1100.0, 0.0, 0.2)}
    results = SimpleNamespace(
        seeds=lambda economy: [0, 1],
        plan=SimpleNamespace(evaluated_branches=lambda economy: ["learned", "fixed20", "fixed80"]),
        evaluations=runs)
    relations = across_runs(results, "open")
    assert [(p["seed"], p["branch"]) for p in relations["runs"]] == [(0, "learned"), (0, "fixed20"), (1, "learned"),
                                                                     (1, "fixed20")]
    assert relations["price_vs_consumption"]["n"] == 4 and relations["price_vs_consumption"]["r"] < -0.95
    assert relations["wage_vs_hours"]["r"] != relations["wage_vs_hours"]["r"]  # wage constant: undefined (NaN)


def test_correlation_reports_sign_strength_and_an_interval():
    import numpy as np

    from pipeline.analysis.report import correlation

    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    c = correlation(x, -2 * x + 0.5 * rng.normal(size=200))
    assert c["r"] < -0.9 and c["ci95"][0] < c["r"] < c["ci95"][1] < 0 and c["r2"] == pytest.approx(c["r"] ** 2)
    assert c["slope"] == pytest.approx(-2, abs=0.2) and c["n"] == 200
    flat = correlation(x, np.ones(200))
    assert flat["r"] != flat["r"]  # NaN: no correlation is defined for a constant


def test_wall_time_spans_the_first_start_to_the_last_end(tmp_path):
    from pipeline.analysis.report import wall_time

    for name, seconds, end in (("a", 10.0, 1_000.0), ("b", 30.0, 1_025.0), ("c", 5.0, 1_040.0)):
        path = tmp_path / "x" / f"{name}.benchmark.tsv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{int(seconds):02d}\t1.0\n")
        os.utime(path, (end, end))
    wall = wall_time(tmp_path)
    assert wall["jobs"] == 3 and wall["jobs_sum"] == pytest.approx(45.0)
    assert wall["dag"] == pytest.approx(1_040.0 - (1_000.0 - 10.0))


# ---------------------------------------------------------------------------------------- swapping modules
def test_backend_is_validated_and_reaches_the_environment():
    from envs.rbc.backends import available_backends
    from pipeline.config import BACKENDS as CONFIG_BACKENDS
    from pipeline.learning.session import Session

    from pipeline_support import small_config

    assert CONFIG_BACKENDS == available_backends()  # the shipped backends, "cuda" found by its entry point
    with pytest.raises(ConfigError, match="training.backend"):
        small_config(training={"backend": "tpu"})
    with pytest.raises(ConfigError, match="training.backend"):
        small_config(training={"backend": "cuda", "device": "cpu"})
    session = Session(small_config(training={"backend": "torch", "num_envs": 2, "threads": 1}))
    assert session.env.backend == "torch"


def test_checkpoints_ignore_the_backend_and_its_absence():
    from pipeline.learning.checkpoint import config_differences

    from pipeline_support import small_config

    config = small_config()
    saved = config.to_dict()
    saved["training"]["backend"] = "cuda"
    assert config_differences(saved, config) == []
    del saved["training"]["backend"]  # written before the key existed
    assert config_differences(saved, config) == []
    saved["training"]["num_envs"] = 99
    assert config_differences(saved, config) == ["training.num_envs: checkpoint 99 != current 4"]


def test_readme_policy_factory_example_trains(tmp_path, monkeypatch):
    """The README's user network, loaded through policy.factory, runs an episode and learns."""
    from pipeline.learning.curriculum import Curriculum
    from pipeline.learning.session import Session

    from pipeline_support import small_config

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(# mypkg/nets\.py\n.*?)```", readme, re.S)
    assert block, "the README shows the factory as a python block starting with '# mypkg/nets.py'"
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(block.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        monkeypatch.delitem(sys.modules, name)

    config = small_config(policy={"factory": "mypkg.nets:build", "hidden_sizes": [8]},
                          training={"num_envs": 2, "threads": 1})
    session = Session(config)
    assert all(type(p.network).__name__ == "LayerNormMLP" for p in session.policies.values())
    before = {k: v.clone() for k, v in session.policies["consumer"].network.state_dict().items()}
    curriculum = Curriculum(config.curriculum, session.economy)
    _, metrics = session.run_episode(curriculum.plan(0))
    assert metrics["reward/consumer"] == metrics["reward/consumer"]  # a number, not NaN
    after = session.policies["consumer"].network.state_dict()
    assert any(not (before[k] == after[k]).all() for k in before)  # consumers train in the first stage
