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


HUGE_PROBE = ("import os; from recurrentkit.allocator import prefer_huge_pages; "
              "print(prefer_huge_pages(), os.environ.get('THP_MEM_ALLOC_ENABLE'))")


def _huge_probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE", "RECURRENTKIT_MALLOC")}
    done = subprocess.run([sys.executable, "-c", HUGE_PROBE], env={**clean, **env}, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def _thp_mode() -> str:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as setting:
            return setting.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return "none"


@pytest.mark.skipif(_thp_mode() in ("never", "none"), reason="no transparent huge pages, or they are off")
def test_huge_pages_asked_for():
    assert _huge_probe() == "True 1"


@pytest.mark.skipif(_thp_mode() != "madvise", reason="only with THP on request (madvise) does asking change the faults")
def test_large_tensors_fault_per_2_mib_with_huge_pages():
    code = (
        "import resource, sys, torch\n"
        "from recurrentkit.allocator import prefer_huge_pages\n"
        "if sys.argv[1] == 'on':\n"
        "    prefer_huge_pages()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(10):\n"
        "    torch.ones(16 * 1024 * 1024)\n"  # 64 MiB: above glibc's 32 MiB cap, mapped afresh each time
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE", "RECURRENTKIT_MALLOC")}
    faults = {mode: int(subprocess.run([sys.executable, "-c", code, mode], env=clean, capture_output=True, text=True,
                                       check=True).stdout.strip()) for mode in ("off", "on")}
    assert faults["off"] > 100_000  # 10 x 16,384 pages of 4 KiB
    assert faults["on"] < faults["off"] / 10


@pytest.mark.parametrize("env, expected", [({"RECURRENTKIT_MALLOC": "default"}, "False None"),
                                           ({"THP_MEM_ALLOC_ENABLE": "0"}, "False 0")])
def test_huge_page_opt_outs(env, expected):
    assert _huge_probe(**env) == expected
