"""keep_freed_memory: glibc's thresholds are fixed on Linux/glibc, and the opt-outs leave them alone."""

import os
import subprocess
import sys

import pytest

from recurrentkit.allocator import _glibc

PROBE = "from recurrentkit.allocator import keep_freed_memory; print(keep_freed_memory(), keep_freed_memory())"


def run_probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "RECURRENTKIT_MALLOC"}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux") or _glibc() is None, reason="needs Linux with glibc")
def test_thresholds_set_once_on_glibc():
    assert run_probe() == "True True"


@pytest.mark.parametrize("env", [{"RECURRENTKIT_MALLOC": "default"}, {"MALLOC_TRIM_THRESHOLD_": "131072"},
                                 {"MALLOC_MMAP_THRESHOLD_": "65536"}])
def test_opt_outs_leave_glibc_alone(env):
    assert run_probe(**env) == "False False"


@pytest.mark.skipif(not sys.platform.startswith("linux") or _glibc() is None, reason="needs Linux with glibc")
def test_freed_large_buffer_is_reused_without_page_faults():
    """After the call, freeing and re-allocating a 16 MiB tensor costs no new minor page faults (glibc's default
    would mmap it afresh, faulting in its 4,096 pages, until its dynamic threshold has grown past it)."""
    code = (
        "import resource, torch\n"
        "from recurrentkit.allocator import keep_freed_memory\n"
        "keep_freed_memory()\n"
        "def faults():\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(3):\n"
        "    torch.ones(4 * 1024 * 1024)\n"  # 16 MiB, allocated, touched, freed: the heap grows to hold it
        "before = faults()\n"
        "for _ in range(20):\n"
        "    torch.ones(4 * 1024 * 1024)\n"
        "print(faults() - before)\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "RECURRENTKIT_MALLOC"}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) < 4096  # one re-fault of the buffer is 4,096 pages; glibc defaults: ~37,000
