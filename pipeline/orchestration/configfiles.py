"""`python -m pipeline.orchestration.configfiles SNAKEMAKE_ARGS...`: check the --configfile files first.

Snakemake reads its --configfile files before it reads the Snakefile, so nothing in the workflow can
catch a file that is missing or malformed; Snakemake reports the first with a traceback and the
second without the file's name. `./run main` runs this check on its arguments before Snakemake
starts: each file must exist and hold a YAML (or JSON) mapping, or the check prints one line naming
the file and exits with 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from envs.rbc.config import ConfigError

OPTIONS = ("--configfile", "--configfiles")


def grouped_configfiles(argv: list[str]) -> list[tuple[str, bool]]:
    """(path, whether another path of the same --configfile came before it), in the order given."""
    found, taking = [], None
    for arg in argv:
        option, sep, value = arg.partition("=")
        if option in OPTIONS:
            taking = None if sep else 0
            found += [(value, False)] if sep else []
        elif arg.startswith("-"):
            taking = None
        elif taking is not None:
            found.append((arg, taking > 0))
            taking += 1
    return found


def configfiles(argv: list[str]) -> list[str]:
    """The paths given to --configfile/--configfiles (each takes every argument up to the next option)."""
    return [path for path, _ in grouped_configfiles(argv)]


def check_configfile(path: str, follows_another: bool = False) -> None:
    file = Path(path)
    if not file.is_file():
        where = "" if file.is_absolute() else f" (relative to {Path.cwd()})"
        # `./run main --configfile cheap.yaml results/.../evaluation.json` reads the target as a config file,
        # as Snakemake itself would: a missing path after a profile that exists is most likely a target.
        target = ("; if it is a target, give it before --configfile, which takes every word after it up to the "
                  "next option" if follows_another else "")
        raise ConfigError(f"--configfile {path}: no such file{where}{target}")
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--configfile {path} cannot be read: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--configfile {path} is not valid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--configfile {path} holds {type(data).__name__ if data is not None else 'nothing'}, "
                          "not a mapping of workflow keys (see workflow/config/smoke.yaml)")


def main(argv: list[str] | None = None) -> int:
    try:
        for path, follows_another in grouped_configfiles(sys.argv[1:] if argv is None else argv):
            check_configfile(path, follows_another)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
