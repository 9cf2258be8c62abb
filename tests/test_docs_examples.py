"""The Python examples in the README and the docs run as they stand (each page in a fresh interpreter)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/how-to/add-a-cell.md", "docs/getting-started.md"]


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run_in_order(page, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(encoding="utf-8"), re.S)
    assert blocks, f"{page} has no python code blocks"
    script = tmp_path / "example.py"  # a real file: TorchScript needs the source of scripted functions
    script.write_text("\n".join(blocks), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny models: one thread is fastest, and immune to a busy machine
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path,
                            env=env)
    assert result.returncode == 0, f"{page} examples failed:\n{result.stderr[-3000:]}"
