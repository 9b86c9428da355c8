"""CUDA backend of the RBC environment: the kernels of `gpu/kernels` compiled at run time with NVRTC.

- Compilation goes through cuda.core's `Program` to a cubin for the GPU at hand, once per process and
  architecture (`compile_module`), and needs no driver, so CPU-only CI can compile the kernels too.
- Launches run on torch's current CUDA stream and read and write torch tensors through their device
  pointers, so they are ordered with surrounding torch work without extra synchronization or copies.
- The driver is probed once per process and the answer cached (`cuda_status`). After a failed probe
  nothing here touches the driver again: with cuda-python 13 / cuda.core 1.2, a driver call that follows
  a failed driver load can deadlock (see docs/gpu.md), so errors must be reported from the cache.
"""

from __future__ import annotations

import importlib.util
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from envs.rbc.config import RBCConfig

from .engine import ActionIndexError, KernelBackend, describe_error
from .layout import block_size

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
KERNEL_SOURCE = "rbc_step.cu"
KERNEL_NAMES = ("rbc_step_indexed", "rbc_step_decoded", "rbc_reset")
# Dynamic shared memory a block may use without opting in to more (all CUDA GPUs since Kepler).
DEFAULT_SHARED_LIMIT = 48 * 1024

INSTALL_HINT = "pip install -e '.[gpu]' (cuda-python and nvidia-cuda-nvrtc, of the CUDA major version of torch)"


class CudaUnavailableError(RuntimeError):
    """backend='cuda' cannot run here; the message lists every missing piece."""


@dataclass(frozen=True)
class CudaStatus:
    """What the CUDA backend needs, and what of it is missing on this machine."""

    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        return "; ".join(self.problems) if self.problems else "CUDA backend available"


_lock = threading.Lock()
_driver_probe: tuple[bool, str] | None = None
_status: CudaStatus | None = None
_modules: dict[str, object] = {}
compile_seconds: dict[str, float] = {}


# ---------------------------------------------------------------------------------------------- probing
def cuda_core_available() -> bool:
    try:
        return importlib.util.find_spec("cuda.core") is not None
    except (ImportError, ValueError):
        return False


def nvrtc_problem() -> str | None:
    """Why NVRTC cannot be loaded, or None. Loading NVRTC does not involve the driver."""
    try:
        from cuda.bindings import nvrtc

        result, major, minor = nvrtc.nvrtcVersion()
    except Exception as err:  # DynamicLibNotFoundError, ImportError, ...
        return f"NVRTC is not loadable ({type(err).__name__}: {err}); pip install nvidia-cuda-nvrtc"
    if int(result) != 0:
        return f"NVRTC reports {result}"
    return None


def probe_driver() -> tuple[bool, str]:
    """(usable, message) for the NVIDIA driver and a GPU; touches the driver at most once per process."""
    global _driver_probe
    with _lock:
        if _driver_probe is None:
            if not cuda_core_available():
                _driver_probe = (False, "cuda-python (cuda.core) is not installed")
            else:
                try:
                    from cuda.core import Device

                    device = Device()
                    _driver_probe = (True, f"{device.name} (sm_{device.arch})")
                except Exception as err:  # DynamicLibNotFoundError without a driver, CUDAError without a GPU
                    _driver_probe = (False, f"{type(err).__name__}: {err}")
        return _driver_probe


def cuda_status() -> CudaStatus:
    """Everything backend='cuda' needs, checked once per process (the driver through `probe_driver`)."""
    global _status
    if _status is not None:
        return _status
    problems: list[str] = []
    notes: list[str] = []
    has_core = cuda_core_available()
    if not has_core:
        problems.append(f"cuda-python is not installed (no module cuda.core): {INSTALL_HINT}")
    else:
        problem = nvrtc_problem()
        if problem:
            problems.append(problem)
    if torch.version.cuda is None:
        problems.append(f"torch {torch.__version__} is a CPU-only build: install a CUDA build of torch")
    if has_core:
        usable, message = probe_driver()
        if not usable:
            problems.append(f"no usable NVIDIA driver / GPU ({message})")
        elif torch.version.cuda is not None and not torch.cuda.is_available():
            problems.append("the driver works but torch sees no CUDA device (torch.cuda.is_available() is False)")
        try:
            import cuda.bindings

            bindings_major = int(cuda.bindings.__version__.split(".")[0])
            if torch.version.cuda is not None and int(torch.version.cuda.split(".")[0]) != bindings_major:
                notes.append(
                    f"torch is built for CUDA {torch.version.cuda} but cuda-python is {cuda.bindings.__version__}; "
                    "use the same CUDA major for both"
                )
        except Exception:  # pragma: no cover - only informative
            pass
    _status = CudaStatus(tuple(problems), tuple(notes))
    return _status


def require_cuda(device: torch.device | str) -> torch.device:
    """The CUDA device to run on, with its index; CudaUnavailableError naming every missing piece otherwise."""
    device = torch.device(device)
    if device.type != "cuda":
        raise CudaUnavailableError(
            f"backend='cuda' runs on a CUDA device, but device={str(device)!r}; pass device='cuda'"
        )
    status = cuda_status()
    if not status.ok:
        raise CudaUnavailableError(f"backend='cuda' is unavailable: {status.reason}")
    for note in status.notes:
        warnings.warn(note, RuntimeWarning, stacklevel=3)
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise CudaUnavailableError(f"device {device} does not exist: torch sees {torch.cuda.device_count()} GPU(s)")
    return torch.device("cuda", index)


# ---------------------------------------------------------------------------------------------- compiling
def kernel_source() -> str:
    return (KERNEL_DIR / KERNEL_SOURCE).read_text()


def program_options(arch: str):
    """NVRTC options. No FMA contraction: every float32 operation rounds on its own, like the host build
    and torch's elementwise ops, which keeps the device within the tolerance the host tests establish."""
    from cuda.core import ProgramOptions

    return ProgramOptions(
        name=KERNEL_SOURCE, arch=arch, std="c++17", include_path=[str(KERNEL_DIR)], fma=False
    )


def compile_module(arch: str):
    """The kernels compiled to a cubin for `arch` (e.g. "sm_90"), once per process; needs NVRTC, no driver."""
    with _lock:
        module = _modules.get(arch)
        if module is not None:
            return module
    if not cuda_core_available():
        raise CudaUnavailableError(f"cuda-python is not installed (no module cuda.core): {INSTALL_HINT}")
    from cuda.core import Program

    started = time.perf_counter()
    try:
        module = Program(kernel_source(), "c++", program_options(arch)).compile("cubin")
    except Exception as err:
        if type(err).__name__ == "DynamicLibNotFoundError":
            raise CudaUnavailableError(f"NVRTC is not loadable ({err}): pip install nvidia-cuda-nvrtc") from err
        raise
    with _lock:
        compile_seconds.setdefault(arch, time.perf_counter() - started)
        return _modules.setdefault(arch, module)


# ---------------------------------------------------------------------------------------------- backend
class CudaBackend(KernelBackend):
    """Step, reset and observations of a batch of economies in one kernel launch each, on torch's stream.

    Invalid action indices are clamped on the device and reported without stalling the GPU: each reset
    queues a copy of the error word to pinned memory and reads the copy queued by the reset before, so
    an invalid index raises ActionIndexError one or two resets later; `check_errors()` checks at once
    (and waits for the device).
    """

    def __init__(self, config: RBCConfig, device: torch.device | str):
        device = require_cuda(device)
        from cuda.core import Device, LaunchConfig, launch

        self._launch = launch
        self._launch_config = LaunchConfig
        self._cc_device = Device(device.index)
        self._cc_device.set_current()
        super().__init__(config, device)
        self.threads = block_size(self.layout.n_agents)
        self.shared_bytes = 4 * self.layout.shared_floats
        if self.shared_bytes > DEFAULT_SHARED_LIMIT:
            raise ValueError(
                f"an economy of {config.n_consumers} consumers and {config.n_firms} firms needs "
                f"{self.shared_bytes} bytes of shared memory per block, above the {DEFAULT_SHARED_LIMIT}-byte "
                "limit of the CUDA backend; use backend='torch' for economies this large"
            )
        self.arch = f"sm_{self._cc_device.arch}"
        module = compile_module(self.arch)
        self._kernels = {name: module.get_kernel(name) for name in KERNEL_NAMES}
        self._streams: dict[int, object] = {}
        self._configs: dict[tuple[int, bool], object] = {}
        self._error_host = torch.zeros(4, dtype=torch.int32, pin_memory=True)
        self._error_event: torch.cuda.Event | None = None

    def _stream(self):
        torch_stream = torch.cuda.current_stream(self.device)
        stream = self._streams.get(torch_stream.cuda_stream)
        if stream is None:
            stream = self._streams[torch_stream.cuda_stream] = self._cc_device.create_stream(torch_stream)
        return stream

    def _config(self, n_envs: int, step: bool):
        key = (n_envs, step)
        config = self._configs.get(key)
        if config is None:
            config = self._configs[key] = self._launch_config(
                grid=n_envs, block=self.threads, shmem_size=self.shared_bytes if step else 0
            )
        return config

    def _run(self, name: str, n_envs: int, step: bool, *args) -> None:
        self._cc_device.set_current()
        self._launch(
            self._stream(), self._config(n_envs, step), self._kernels[name], self._blob.data_ptr(), np.int32(n_envs),
            *args,
        )

    def _launch_step_indexed(self, n_envs, state, actions, penalties, outputs) -> None:
        self._run(
            "rbc_step_indexed", n_envs, True, *state, *actions, np.float32(penalties[0]), np.float32(penalties[1]),
            *outputs, self._error.data_ptr(),
        )

    def _launch_step_decoded(self, n_envs, state, decisions, employer, penalties, outputs) -> None:
        attempted, hours, price, wage, income_tax, corporate_tax = decisions
        self._run(
            "rbc_step_decoded", n_envs, True, *state, attempted, hours, employer, price, wage, income_tax,
            corporate_tax, np.float32(penalties[0]), np.float32(penalties[1]), *outputs, self._error.data_ptr(),
        )

    def _launch_reset(self, n_envs, state: Sequence[int], mask: int, anneal: float, outputs: Sequence[int]) -> None:
        firm, consumer, economy, _consumption, global_obs, consumer_obs, firm_obs = outputs
        self._run(
            "rbc_reset", n_envs, False, *state, mask, np.float32(anneal), firm, consumer, economy, global_obs,
            consumer_obs, firm_obs,
        )

    def _poll_errors(self) -> None:
        event = self._error_event
        if event is not None:
            if not event.query():
                return  # the previous copy is still in flight; look again at the next reset
            self._error_event = None
            code, economy, agent, value = (int(v) for v in self._error_host.tolist())
            if code:
                self._error.zero_()
                raise ActionIndexError(
                    describe_error(code, economy, agent, value) + " (seen by a step of an earlier episode)"
                )
        self._error_host.copy_(self._error, non_blocking=True)
        self._error_event = torch.cuda.Event()
        self._error_event.record(torch.cuda.current_stream(self.device))


def cuda_step_function(config: RBCConfig, device: torch.device | str) -> CudaBackend:
    """A drop-in for `envs.rbc.dynamics.step_economy` on the GPU: same signature, same results."""
    return CudaBackend(config, device)
