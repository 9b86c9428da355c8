"""Packaging: pyproject.toml and environment.yml list the same requirements (conda users get the same stack),
setuptools reads pyproject.toml without deprecation warnings, and ./run installs the gpu extra only in CI."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
import warnings

import yaml

from conftest import ROOT

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*$")


def normalized(requirement: str) -> tuple[str, str]:
    """(PEP 503 name, specifier set with parts sorted and spaces removed)."""
    match = REQUIREMENT.match(requirement.split(";")[0])
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    parts = sorted(p.strip().replace(" ", "") for p in match.group(3).split(",") if p.strip())
    return name, ",".join(parts)


def pyproject_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return list(project["dependencies"]) + list(extras.get("test", []))


def conda_pip_requirements() -> list[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    return list(pip_sections[0])


def test_pyproject_and_environment_yml_agree():
    ours = [normalized(r) for r in pyproject_requirements()]
    conda = [normalized(r) for r in conda_pip_requirements()]
    assert len(set(ours)) == len(ours), "duplicate requirement in pyproject.toml"
    assert len(set(conda)) == len(conda), "duplicate requirement in environment.yml"
    only_pyproject = sorted(set(ours) - set(conda))
    only_conda = sorted(set(conda) - set(ours))
    assert not only_pyproject and not only_conda, (
        f"dependency drift: only in pyproject.toml {only_pyproject}; only in environment.yml {only_conda}"
    )
    gpu = {normalized(r)[0] for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
           ["optional-dependencies"]["gpu"]}
    assert gpu and not gpu & {name for name, _ in conda}, "the gpu extra stays out of the default environment"


def test_extras_present_and_python_versions_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {"test", "gpu"} <= set(project["optional-dependencies"])
    assert "pytest" in {normalized(r)[0] for r in project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert pythons, "environment.yml pins no python"
    conda_version = pythons[0].split("=", 1)[1]
    minimum = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, conda_version.split("."))) >= tuple(map(int, minimum.split(".")))


def test_normalization_catches_drift():
    assert normalized("PyYAML >= 6") == normalized("pyyaml>=6")
    assert normalized("torchrl<0.15,>=0.14.1") == normalized("torchrl>=0.14.1,<0.15")
    assert normalized("torch>=2.6") != normalized("torch>=2.7")
    assert normalized("cuda_python>=13")[0] == normalized("cuda-python>=13")[0]


def test_setuptools_reads_pyproject_without_deprecation_warnings(monkeypatch):
    """A deprecated form (the license as a TOML table) prints a banner on every install; setuptools says which."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(ROOT)  # the readme and the package search are relative to the project
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.get_name() == "dge-marl"


def run_install_rule(call: str, ci: str | None) -> str:
    """Evaluate one of ./run's install rules in bash, with or without CI=true."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    done = subprocess.run(["bash", "-c", f'source ./run && {call} && echo yes || echo no'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_run_installs_the_gpu_extra_only_in_ci(tmp_path):
    """CPU machines skip cuda-python and NVRTC; CI installs them so that it compiles the kernels."""
    assert run_install_rule("wanted_extras", None) == "test\nyes"
    assert run_install_rule("wanted_extras", "false") == "test\nyes"
    assert run_install_rule("wanted_extras", "true") == "test,gpu\nyes"
    stamp = tmp_path / "stamp"
    stamp.write_text("abc test,gpu\n")
    assert run_install_rule(f"stamp_covers {stamp} abc test", None) == "yes"  # a CI install serves a local call
    assert run_install_rule(f"stamp_covers {stamp} abd test", None) == "no"  # pyproject.toml changed
    stamp.write_text("abc test\n")
    assert run_install_rule(f"stamp_covers {stamp} abc test,gpu", "true") == "no"  # CI needs the gpu extra
    assert run_install_rule(f"stamp_covers {tmp_path / 'none'} abc test", None) == "no"


def test_normalization_reads_every_requirement_as_the_packaging_library_does():
    """The comparison above rests on `normalized`; PyPA's own parser (a dependency of pytest) must read every
    requirement of both files the same way, name and version bounds."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    for text in pyproject_requirements() + conda_pip_requirements():
        requirement = Requirement(text)
        name, specifiers = normalized(text)
        assert name == canonicalize_name(requirement.name), text
        assert SpecifierSet(specifiers) == requirement.specifier, text
