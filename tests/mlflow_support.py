"""An `mlflow server` on loopback for the tests: its own SQLite store, started, killed and started again.

The server is the real one a team would run (`mlflow server` with a SQL backend), so the tests see
what jobs see: HTTP, its start-up time, and a store that outlives the process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class MlflowServer:
    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def start(self, timeout: float = 240) -> "MlflowServer":
        """Starts the server and returns once /health answers (about 15 s on two busy cores)."""
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
        ]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not answers(self.uri):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"MLflow server did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)
        return self

    def kill(self) -> None:
        """A crash: SIGKILL to the whole process group, no clean shutdown."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
