"""pyproject.toml and environment.yml must list the same requirements (conda users get the same stack)."""

from __future__ import annotations

import re
import tomllib

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
    return list(project["dependencies"]) + list(extras.get("test", [])) + list(extras.get("gpu", []))


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
