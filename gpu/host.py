"""Host build of the kernel header: `rbc_step.cuh` + `host_shim.cpp` compiled by the system C++ compiler.

This exists so that the arithmetic and the phase structure of the CUDA kernels can be tested against
the torch reference on machines without a GPU: the shared library runs the kernels' phase functions
thread by thread, and `HostBackend` drives it through the same Python code (`KernelBackend`) as the
CUDA backend.

The library is built once per (sources, compiler, flags) into a cache directory outside the repository
(`$DGE_MARL_CACHE_DIR`, else `$XDG_CACHE_HOME/dge-marl`, else `~/.cache/dge-marl`) and reused by later
processes; concurrent builds are safe because each writes a private file and renames it into place.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import torch

from envs.rbc.config import RBCConfig

from .engine import KernelBackend
from .layout import ABI_VERSION, RbcParams, block_size

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
HOST_SOURCES = ("rbc_step.cuh", "host_shim.cpp")
# No FP contraction or fast-math: every float32 operation is rounded on its own, as in torch's CPU ops.
CXX_FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math")

_P = ctypes.c_void_p
_PP = ctypes.POINTER(ctypes.c_void_p)


class HostBuildError(RuntimeError):
    """The host library could not be built or loaded; the message says what to install or fix."""


def cache_dir() -> Path:
    """Where built artifacts go; never inside the repository."""
    explicit = os.environ.get("DGE_MARL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dge-marl"


def find_compiler() -> str:
    """$CXX if set, else the first of g++, c++, clang++ on PATH."""
    explicit = os.environ.get("CXX")
    candidates = [explicit] if explicit else ["g++", "c++", "clang++"]
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return path
    raise HostBuildError(
        f"no C++ compiler found (looked for {', '.join(candidates)} on PATH); install g++ "
        "(e.g. `apt-get install g++`) or set CXX to a C++17 compiler"
    )


def _compiler_identity(compiler: str) -> str:
    try:
        result = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as err:
        raise HostBuildError(f"C++ compiler {compiler!r} does not run: {err}") from err
    return result.stdout.splitlines()[0] if result.stdout else compiler


def build_key(compiler: str) -> str:
    """Hash of everything that affects the binary: sources, compiler and its version, flags."""
    digest = hashlib.sha256()
    for name in HOST_SOURCES:
        digest.update(name.encode())
        digest.update((KERNEL_DIR / name).read_bytes())
    digest.update(compiler.encode())
    digest.update(_compiler_identity(compiler).encode())
    digest.update(" ".join(CXX_FLAGS).encode())
    return digest.hexdigest()[:20]


def build_host_library(compiler: str | None = None, directory: Path | None = None) -> Path:
    """Path of the built library, compiling it only if this (sources, compiler, flags) was never built."""
    compiler = compiler or find_compiler()
    directory = Path(directory) if directory is not None else cache_dir() / "host"
    target = directory / f"librbc_host-{build_key(compiler)}.so"
    if target.exists():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        directory = Path(tempfile.gettempdir()) / "dge-marl-host"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / target.name
        if target.exists():
            return target
    fd, scratch = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=directory)
    os.close(fd)
    command = [compiler, *CXX_FLAGS, "-I", str(KERNEL_DIR), str(KERNEL_DIR / "host_shim.cpp"), "-o", scratch]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise HostBuildError(
                f"building the host library failed (exit {result.returncode}):\n{' '.join(command)}\n{result.stderr}"
            )
        os.replace(scratch, target)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return target


@functools.lru_cache(maxsize=None)
def load_host_library(path: str | None = None) -> ctypes.CDLL:
    """The host library with its prototypes declared; built on first use. Cached per process."""
    library = ctypes.CDLL(str(path or build_host_library()))
    library.rbc_host_abi_version.restype = ctypes.c_int
    library.rbc_host_params_size.restype = ctypes.c_int
    library.rbc_host_max_block_threads.restype = ctypes.c_int
    library.rbc_host_shared_floats.restype = ctypes.c_int
    library.rbc_host_shared_floats.argtypes = [ctypes.c_int, ctypes.c_int]
    library.rbc_host_slot_names.restype = ctypes.c_char_p
    library.rbc_host_slot_names.argtypes = [ctypes.c_int]
    library.rbc_host_step_indexed.restype = None
    library.rbc_host_step_indexed.argtypes = [
        _P, ctypes.c_int, _PP, _PP, ctypes.c_float, ctypes.c_float, _PP, _P, ctypes.c_int, ctypes.c_int
    ]
    library.rbc_host_step_decoded.restype = None
    library.rbc_host_step_decoded.argtypes = [
        _P, ctypes.c_int, _PP, _PP, _P, ctypes.c_float, ctypes.c_float, _PP, _P, ctypes.c_int, ctypes.c_int
    ]
    library.rbc_host_reset.restype = None
    library.rbc_host_reset.argtypes = [_P, ctypes.c_int, _PP, _P, ctypes.c_float, _PP, ctypes.c_int, ctypes.c_int]
    if library.rbc_host_abi_version() != ABI_VERSION:
        raise HostBuildError(
            f"host library ABI {library.rbc_host_abi_version()} != gpu/layout.py ABI {ABI_VERSION}; "
            "rbc_step.cuh and gpu/layout.py are out of step"
        )
    if library.rbc_host_params_size() != ctypes.sizeof(RbcParams):
        raise HostBuildError(
            f"struct RbcParams is {library.rbc_host_params_size()} bytes in C++ but "
            f"{ctypes.sizeof(RbcParams)} in gpu/layout.py; the two definitions differ"
        )
    return library


def slot_names(group: int) -> tuple[str, ...]:
    """Slot names of an output group as the header's X-macros spell them (0 firm, 1/2 consumer, 3 economy)."""
    text = load_host_library().rbc_host_slot_names(group).decode()
    return tuple(name for name in text.split(",") if name)


def _pointer_array(pointers: Sequence[int]):
    return (ctypes.c_void_p * len(pointers))(*[p or None for p in pointers])


class HostBackend(KernelBackend):
    """The kernels' code on CPU tensors: the same results a GPU block computes, one simulated thread at a time.

    `n_threads` is the simulated block size (default: the CUDA backend's choice for this economy, so
    that the same agent-to-thread assignment is exercised); `reverse=True` runs each phase's threads
    backwards, which exposes any dependency between threads inside a phase.
    """

    def __init__(self, config: RBCConfig, n_threads: int | None = None, reverse: bool = False):
        super().__init__(config, torch.device("cpu"))
        self._library = load_host_library()
        self.n_threads = n_threads or block_size(self.layout.n_agents)
        self.reverse = int(reverse)

    def _launch_step_indexed(self, n_envs, state, actions, penalties, outputs) -> None:
        self._library.rbc_host_step_indexed(
            self._blob.data_ptr(),
            n_envs,
            _pointer_array(state),
            _pointer_array(actions),
            penalties[0],
            penalties[1],
            _pointer_array(outputs),
            self._error.data_ptr(),
            self.n_threads,
            self.reverse,
        )
        self.check_errors()

    def _launch_step_decoded(self, n_envs, state, decisions, employer, penalties, outputs) -> None:
        self._library.rbc_host_step_decoded(
            self._blob.data_ptr(),
            n_envs,
            _pointer_array(state),
            _pointer_array(decisions),
            employer,
            penalties[0],
            penalties[1],
            _pointer_array(outputs),
            self._error.data_ptr(),
            self.n_threads,
            self.reverse,
        )
        self.check_errors()

    def _launch_reset(self, n_envs, state, mask, anneal, outputs) -> None:
        self._library.rbc_host_reset(
            self._blob.data_ptr(),
            n_envs,
            _pointer_array(state) if any(state) else None,
            mask or None,
            anneal,
            _pointer_array(outputs),
            self.n_threads,
            self.reverse,
        )
