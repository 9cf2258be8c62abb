"""A `recurrentkit` run prints what the user needs, not third-party notices (and every other warning still shows)."""

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

from recurrentkit.console import QUIET_LOG_PREFIXES, quiet_third_party_notices

ROOT = Path(__file__).resolve().parents[1]
NOTICES = ("tensorboardX", "litlogger", "LeafSpec", "_pytree")


def test_tiny_fit_prints_no_third_party_notices(tmp_path):
    # logger=true is what makes Lightning print the tensorboardX notice; the recipe itself turns the logger off
    cmd = [sys.executable, "-m", "recurrentkit", "fit", "-c", str(ROOT / "recipes/debug/tiny-lm.yaml"),
           "--trainer.fast_dev_run=true", "--trainer.logger=true", "--trainer.enable_progress_bar=false",
           f"--trainer.default_root_dir={tmp_path}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}  # show warnings as a user's shell would
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "validation: val/bpc=" in out  # our own summary is there
    assert [n for n in NOTICES if n in out] == [], out
    assert "tokenize:" not in out and "encode:" not in out  # no progress bars for a one-row corpus


def test_only_the_named_notices_are_filtered(caplog):
    quiet_third_party_notices()
    quiet_third_party_notices()  # idempotent: one filter per logger
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert sum(type(f).__name__ == "_DropLogMessages" for f in log.filters) == 1
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info(QUIET_LOG_PREFIXES[0] + " to enable LitLogger")
        log.info("💡 Tip: something else")
    assert [r.getMessage() for r in caplog.records] == ["💡 Tip: something else"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        quiet_third_party_notices()
        tbx = "Starting from v1.9.0, `tensorboardX` has been removed as a dependency of the package ..."
        warnings.warn(tbx, UserWarning, stacklevel=1)
        warnings.warn("`tensorboardX` is something else", UserWarning, stacklevel=1)
        # the pytree warning is dropped only when Lightning's _pytree module raises it, not from here
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["`tensorboardX` is something else",
                                                "`isinstance(treespec, LeafSpec)` is deprecated"]
