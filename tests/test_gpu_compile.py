"""NVRTC compiles the complete kernel source to cubin for the targeted GPUs, on any machine.

Compiling to cubin runs the whole toolchain (front end, NVVM and ptxas) without a driver or GPU, so
CPU-only CI catches syntax, template and resource errors in `gpu/kernels` that the host build (g++)
cannot see: device-only code paths, `__launch_bounds__`, register limits. (cuda.core's PTX target is not
used: after compiling it asks the driver for its version, which fails without one.)
"""

from __future__ import annotations

import io
import os
import time

import pytest

backend = pytest.importorskip("gpu.backend")

if not backend.cuda_core_available():
    if os.environ.get("CI") == "true":  # ./run installs the gpu extra there, so a skip would hide a broken install
        pytest.fail("CI=true but cuda-python (cuda.core) is not installed: ./run installs the gpu extra when CI=true",
                    pytrace=False)
    pytest.skip("cuda-python (cuda.core) is not installed: ./run python -m pip install -e '.[gpu]'",
                allow_module_level=True)
_nvrtc_problem = backend.nvrtc_problem()
if _nvrtc_problem:
    pytest.skip(_nvrtc_problem, allow_module_level=True)

ARCHES = ["sm_80", "sm_90"]  # A100, H100


@pytest.mark.parametrize("arch", ARCHES)
def test_kernels_compile_to_cubin(arch):
    started = time.perf_counter()
    module = backend.compile_module(arch)
    elapsed = time.perf_counter() - started
    cubin = bytes(module.code)
    assert cubin[:4] == b"\x7fELF", "NVRTC did not return a cubin"
    for name in backend.KERNEL_NAMES:
        assert name.encode() in cubin, f"kernel {name} missing from the {arch} cubin"
    assert backend.compile_module(arch) is module, "the module must be compiled once per process"
    print(f"NVRTC {arch}: {backend.compile_seconds[arch]:.2f} s (this call {elapsed:.2f} s), {len(cubin)} bytes")


def test_kernels_fit_the_largest_block():
    """Every kernel must be launchable with RBC_MAX_BLOCK_THREADS threads: ptxas reports its registers."""
    from cuda.core import Program

    from gpu.layout import MAX_BLOCK_THREADS

    options = backend.program_options("sm_90")
    options.ptxas_options = ["-v"]
    log = io.StringIO()
    Program(backend.kernel_source(), "c++", options).compile("cubin", logs=log)
    text = log.getvalue()
    registers = [int(line.split("Used ")[1].split(" registers")[0]) for line in text.splitlines() if "Used " in line]
    assert len(registers) == len(backend.KERNEL_NAMES), text
    assert max(registers) * MAX_BLOCK_THREADS <= 65536, text  # registers per SM on sm_80 / sm_90


def test_compile_errors_carry_the_nvrtc_log():
    from cuda.core import Program

    source = backend.kernel_source() + "\nextern \"C\" __global__ void broken() { undefined_symbol(); }\n"
    with pytest.raises(Exception, match="undefined_symbol"):
        Program(source, "c++", backend.program_options("sm_90")).compile("cubin")
