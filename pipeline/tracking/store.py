"""The MLflow store a run logs to: where it is, whether it answers, and what a failure means.

A tracking server that cannot be reached must cost seconds, not minutes. Left alone, MLflow's
client retries a refused connection with exponential backoff for about four minutes and then ends
in a long traceback. So an HTTP store is probed first (its `/health` endpoint, short timeouts)
and MLflow's own retries are cut down to a few seconds; an unreachable server is then reported in
one line that names the URI and how to turn tracking off.

Once a run has started, a failed call is classified: a server that went away (connection refused
or reset, a gateway error, no answer to the probe) is an outage the caller can wait out or buffer
through; anything else is a real error and is raised.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from envs.rbc.config import ConfigError

from ..config import TrackingConfig

DEFAULT_STORE = Path("results") / "mlflow.db"
# A busy server (many jobs starting at once on a loaded node) can take seconds to answer /health;
# a refused connection is known at once but retried too, in case the server is restarting.
PROBE_TIMEOUT_S = 5.0  # one /health request
START_PATIENCE_S = 10.0  # how long a starting run waits for a server before refusing
# MLflow's HTTP client settings for remote stores, unless the environment sets them: two quick
# retries instead of seven with doubling pauses (254 s on a refused connection).
CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
GATEWAY_ERRORS = (502, 503, 504)  # a proxy in front of a server that is down or restarting


class TrackingUnavailable(ConfigError):
    """The tracking store does not answer; the message says which one and how to turn tracking off."""


def tracking_uri(config: TrackingConfig) -> str:
    if config.uri:
        return config.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    DEFAULT_STORE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


def adopt_workflow_uri(config: dict) -> str | None:
    """The workflow config's `tracking_uri` becomes MLFLOW_TRACKING_URI, for this process and every job it starts.

    A profile sets it once (`config: [tracking_uri=http://host:5000]`, docs/cluster.md). It is taken out
    of the workflow config rather than put into the experiment configs: where runs are logged is not part
    of an experiment, so pointing at another server reruns nothing and the results stay byte-identical.
    """
    uri = config.pop("tracking_uri", None)
    if uri is None:
        return None
    if not isinstance(uri, str) or not uri or any(c.isspace() for c in uri):
        raise ConfigError(f"invalid workflow config: tracking_uri={uri!r}; allowed: an MLflow tracking URI "
                          "such as http://host:5000 (or leave it out for MLFLOW_TRACKING_URI or results/mlflow.db)")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


TURN_OFF = "turn tracking off with experiment.tracking.enabled: false (on a command line: --set tracking.enabled=false)"


def unreachable_message(uri: str, reason: str) -> str:
    return (f"MLflow tracking server {uri} is unreachable ({reason}); start it, or point MLFLOW_TRACKING_URI / "
            f"experiment.tracking.uri at a running one, or {TURN_OFF}")


def refused_message(uri: str, err: Exception) -> str:
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return f"MLflow tracking server {uri} refused to start a run ({first[:300]}); fix it or the URI, or {TURN_OFF}"


def probe(uri: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the server answers; otherwise why not, in a few words.

    Any HTTP answer counts, a 401 from a server behind a login too; only a gateway error means the
    server behind the proxy is gone.
    """
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}" if err.code in GATEWAY_ERRORS else None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return "no answer (timed out)"
        return (reason.strerror or str(reason)).lower() if isinstance(reason, OSError) else str(reason)


def check_reachable(uri: str, patience: float = START_PATIENCE_S) -> None:
    """Returns once a remote store answers; raises TrackingUnavailable after `patience` seconds."""
    reason = wait_until_reachable(uri, patience)
    if reason is not None:
        raise TrackingUnavailable(unreachable_message(uri, reason))


def wait_until_reachable(uri: str, patience: float) -> str | None:
    """Probes every second or so until the store answers (None) or `patience` runs out (the last reason)."""
    if not is_remote(uri):
        return None
    deadline = time.monotonic() + patience
    while True:
        reason = probe(uri, timeout=min(PROBE_TIMEOUT_S, max(deadline - time.monotonic(), 0.1)))
        if reason is None or time.monotonic() >= deadline:
            return reason
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))


def is_outage(uri: str, err: BaseException) -> bool:
    """Whether a failed call means the remote server is away (wait or buffer), not a real error."""
    if not is_remote(uri):
        return False
    from requests.exceptions import ConnectionError as Refused
    from requests.exceptions import Timeout

    chain, seen = err, 0
    while chain is not None and seen < 10:  # MLflow re-raises the transport's error as the context
        if isinstance(chain, (Refused, Timeout)):
            return True
        chain, seen = chain.__cause__ or chain.__context__, seen + 1
    return probe(uri) is not None


def client_for(uri: str):
    """An MlflowClient for `uri`: a remote server must answer first; a SQLite store is opened under a lock.

    Opening a SQLite store that does not exist yet creates its tables by migrations, and two workflow
    jobs starting together on a fresh results/ directory would both run them and collide
    ("duplicate column name"). The lock makes the first one create the store and the others wait
    for it; once the store exists, opening it only reads the schema version.
    """
    from mlflow.tracking import MlflowClient

    if is_remote(uri):
        for key, value in CLIENT_DEFAULTS.items():
            os.environ.setdefault(key, value)
        check_reachable(uri)
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    import fcntl

    database = Path(uri.removeprefix("sqlite:///").split("?")[0])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # make sure the store is open while locked
            return client
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _retry(call: Callable, *args, attempts: int = 8, **kwargs):
    """SQLite stores refuse concurrent writers for a moment ("database is locked"); wait and retry."""
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - mlflow wraps the driver's error in several types
            if "locked" not in str(err).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)


def call_through_outages(uri: str, patience: float, call: Callable, *args, **kwargs):
    """`call`, retried while the remote server is away, for at most `patience` seconds.

    Raises TrackingUnavailable when the server has not come back in time; real errors at once.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            return _retry(call, *args, **kwargs)
        except Exception as err:  # noqa: BLE001 - classified below
            if not is_outage(uri, err):
                raise
            reason = wait_until_reachable(uri, deadline - time.monotonic())
            if reason is not None:
                raise TrackingUnavailable(unreachable_message(uri, reason)) from None
