"""How the command-line tools end: one line on stderr for every failure the user can act on.

A bad config value, an unusable checkpoint, an unwritable output, a diverged run and an interrupt are
not bugs: their tracebacks say nothing the message does not, and hide the one line that says what to
do. `run_command` prints that line and returns the exit code (2 for errors, 130 for an interrupt, as a
shell reports Ctrl-C); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from envs.rbc.config import ConfigError

from .algorithms import TrainingDiverged
from .checkpoint import CheckpointError
from .files import OutputError, storage_error

USER_ERRORS = (ConfigError, CheckpointError, OutputError, TrainingDiverged)
INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, with where the work stopped and how to continue it as the message."""


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM as Ctrl-C while the block runs.

    Batch schedulers and `kill` stop a job with SIGTERM; without this the process dies where it stands and
    its MLflow run stays RUNNING forever. As a KeyboardInterrupt the run is closed as KILLED, and the last
    periodic resume checkpoint is what the restarted job continues from, exactly as after Ctrl-C.
    """
    def handler(signum: int, frame) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_reason(err: KeyboardInterrupt) -> str:
    """"interrupted" for Ctrl-C, "stopped by signal 15" for SIGTERM."""
    return str(err) or "interrupted"


def run_command(body: Callable[[], int], unfinished: str) -> int:
    """Run a tool's work; `unfinished` tells what an interrupt before any finer report leaves behind."""
    try:
        with interrupt_on_sigterm():
            return body()
    except Interrupted as err:
        print(str(err), file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt as err:
        print(f"{stop_reason(err)}: {unfinished}", file=sys.stderr)
        return INTERRUPTED
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        known = storage_error(err, err.filename or "an output file")
        if known is None:
            raise
        print(f"error: {known}", file=sys.stderr)
        return 2
