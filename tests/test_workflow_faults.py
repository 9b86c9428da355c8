"""Workflow configs that used to pass `snakemake -n` and fail later, or be silently ignored: a bad
policy.factory, an empty mapping that Snakemake's merge drops, a missing or malformed --configfile."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from test_workflow import DEFAULT, SMOKE, expected_jobs, job_counts, merged, snakemake

from envs.rbc.config import ConfigError
from pipeline.factory import check_factory
from pipeline.orchestration import configfiles
from pipeline.orchestration.overrides import check_overrides
from pipeline.orchestration.plan import WorkflowPlan

USER_PACKAGE = {
    "__init__.py": "",
    # torch at the top, as any real factory module: checking it must not import it
    "nets.py": """
        import torch
        from torch import nn


        class Net(nn.Module):
            def __init__(self, layout=None, options=None):
                super().__init__()
                self.layer = nn.Linear(1, 1)


        def build(layout, options, scale=1.0):
            return Net(layout, options)


        def one_arg(layout):
            return Net()


        def forgets(layout, options):
            Net(layout, options)


        def literal(layout, options):
            return {"layers": 2}
        """,
    "plain.py": "NOT_CALLABLE = 3\n",
    "broken.py": "def build(layout, options)\n    return None\n",
}

# factory -> what the error says (None: accepted), all decided without importing torch
CASES = {
    "pipeline.learning.equivariant:build": None,
    "usernets.nets:build": None,
    "nosuchpkg.nets:build": "module 'nosuchpkg.nets' is not found in the working directory or on sys.path",
    "usernets.nets:missing": "its module defines no 'missing'",
    "usernets.nets:one_arg": "it cannot be called with (layout, options): def one_arg(layout)",
    "usernets.nets:forgets": "it has no return statement: it returns None, not a network",
    "usernets.nets:literal": "it returns {'layers': 2}, not a network",
    "usernets.plain:NOT_CALLABLE": "'int' object, not callable",
    "usernets.broken:build": "broken.py line 1: expected ':'",
    "builtins:len": "it cannot be called with (layout, options): too many positional arguments",
    "builtins:dict": "the class dict does not make a torch nn.Module",
}


@pytest.fixture
def user_package(tmp_path):
    package = tmp_path / "usernets"
    package.mkdir()
    for name, text in USER_PACKAGE.items():
        (package / name).write_text(textwrap.dedent(text))
    return tmp_path


def profile_with_factory(factory: str) -> dict:
    config = merged(DEFAULT, SMOKE)
    config["experiment"]["policy"]["factory"] = factory
    return config


def test_a_bad_factory_fails_when_the_plan_is_read_without_importing_torch(user_package):
    """The plan runs in a fresh interpreter in the working directory, as under Snakemake."""
    script = textwrap.dedent(f"""
        import json, sys
        from envs.rbc.config import ConfigError
        from pipeline.orchestration.plan import WorkflowPlan
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_workflow_faults import CASES, profile_with_factory
        found = {{}}
        for factory in CASES:
            try:
                WorkflowPlan(profile_with_factory(factory))
                found[factory] = None
            except ConfigError as err:
                found[factory] = str(err)
        print(json.dumps({{"found": found, "torch": "torch" in sys.modules}}))
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=user_package, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["torch"] is False
    for factory, says in CASES.items():
        message = result["found"][factory]
        if says is None:
            assert message is None, (factory, message)
        else:
            assert message.startswith(f"invalid config: experiment.policy.factory={factory!r} ("), message
            assert says in message, (factory, message)
            assert message.endswith("returns a torch nn.Module")


def test_a_factory_bound_by_assignment_is_judged_by_importing_its_module(user_package, monkeypatch):
    (user_package / "usernets" / "alias.py").write_text("from usernets.plain import NOT_CALLABLE as build\n")
    monkeypatch.syspath_prepend(str(user_package))
    with pytest.raises(ConfigError, match="'int' object, not callable"):
        check_factory("usernets.alias:build")
    for name in [m for m in sys.modules if m == "usernets" or m.startswith("usernets.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("factory", ["builtins:len", "usernets.nets:literal"])
def test_snakemake_dry_run_refuses_a_bad_factory_before_any_rule(tmp_path, user_package, factory):
    profile = tmp_path / "factory.yaml"
    profile.write_text(yaml.safe_dump({"experiment": {"policy": {"factory": factory}}}))
    result = snakemake(user_package, "-n", "--configfile", str(SMOKE), str(profile))
    assert result.returncode != 0
    assert f"invalid config: experiment.policy.factory={factory!r}" in result.stdout + result.stderr


def test_an_empty_mapping_that_snakemake_would_drop_is_refused():
    with pytest.raises(ConfigError, match=r"--config economies=\{\} changes nothing.*economies=\{closed: null\}"):
        check_overrides(DEFAULT, [], {"economies": {}})
    with pytest.raises(ConfigError, match=r"--config experiment\.training=\{\} changes nothing"):
        check_overrides(DEFAULT, [SMOKE], {"experiment": {"training": {}}})
    # under a new key an empty mapping is kept by the merge (a new economy with the default settings), and an
    # empty mapping that a later file fills (default.yaml's `economy: {}` under the smoke profile) is no override
    check_overrides(DEFAULT, [DEFAULT, SMOKE], {"economies": {"mine": {}}})


def test_an_empty_mapping_in_a_profile_is_refused_naming_the_file(tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text("economies: {}\n")
    with pytest.raises(ConfigError, match=rf"economies: \{{\}} in {profile} changes nothing"):
        check_overrides(DEFAULT, [SMOKE, profile], {})


def test_snakemake_refuses_empty_economies_and_drops_an_economy_set_to_null(tmp_path):
    refused = snakemake(tmp_path, "-n", "--configfile", str(SMOKE), "--config", "economies={}")
    assert refused.returncode != 0
    assert "--config economies={} changes nothing" in refused.stdout + refused.stderr
    dropped = snakemake(tmp_path, "-n", "--configfile", str(SMOKE), "--config", "economies={closed: null}")
    assert dropped.returncode == 0, dropped.stderr[-3000:]
    only_open = merged(DEFAULT, SMOKE)
    only_open["economies"] = {**only_open["economies"], "closed": None}  # as the command line set it
    assert job_counts(dropped.stdout + dropped.stderr) == expected_jobs(WorkflowPlan(only_open))


def test_economies_all_set_to_null_are_refused():
    config = merged(DEFAULT)
    config["economies"] = {"open": None, "closed": "null"}
    with pytest.raises(ConfigError, match="economies=.*at least one economy not set to null"):
        WorkflowPlan(config)


# ---------------------------------------------------------------------------------------- --configfile
def test_configfile_paths_are_found_as_snakemake_reads_them():
    argv = ["-n", "--configfile", "a.yaml", "b.yaml", "--cores", "2", "target", "--configfiles=c.yaml"]
    assert configfiles.configfiles(argv) == ["a.yaml", "b.yaml", "c.yaml"]
    assert configfiles.grouped_configfiles(argv) == [("a.yaml", False), ("b.yaml", True), ("c.yaml", False)]


@pytest.mark.parametrize("text, says", [
    (None, ": no such file (relative to "),
    ("experiment: [1\n", " is not valid YAML at line 2, column 1: expected ',' or ']'"),
    ("", " holds nothing, not a mapping of workflow keys"),
    ("- seeds\n", " holds list, not a mapping of workflow keys"),
])
def test_a_missing_or_malformed_configfile_is_one_line_naming_it(tmp_path, monkeypatch, capsys, text, says):
    monkeypatch.chdir(tmp_path)
    if text is not None:
        Path("profile.yaml").write_text(text)
    assert configfiles.main(["-n", "--configfile", str(SMOKE), "profile.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --configfile profile.yaml{says}"), err
    Path("profile.yaml").write_text("seeds: [3]\n")
    assert configfiles.main(["-n", "--configfile", str(SMOKE), "profile.yaml"]) == 0


def test_a_target_given_after_configfile_is_named_as_such(tmp_path, monkeypatch, capsys):
    """Snakemake's --configfile takes every following word: a target written after it is read as a profile."""
    monkeypatch.chdir(tmp_path)
    target = "results/smoke/open/seed0/learned/evaluation.json"
    assert configfiles.main(["--configfile", str(SMOKE), target]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --configfile {target}: no such file") and "if it is a target, give it before --configfile" in err, err
    assert configfiles.main([target, "--configfile", str(SMOKE)]) == 0
    assert configfiles.main(["--configfile", "missing.yaml"]) == 2
    assert "if it is a target" not in capsys.readouterr().err  # the first path of --configfile: a missing profile
