"""A Weights & Biases logger that never blocks a run: without credentials it logs offline and says so."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_info


def wandb_credentials_available() -> bool:
    """True when an API key is configured (``WANDB_API_KEY`` or a ``~/.netrc`` entry for the W&B host)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and netrc.netrc(str(path)).authenticators(host) is not None
    except (netrc.NetrcParseError, OSError):
        return False


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger``, offline unless credentials exist or ``offline=False`` is asked for explicitly.

    ``WANDB_MODE=offline`` / ``disabled`` are honoured as usual. Offline runs can be uploaded later with
    ``wandb sync <dir>``.
    """

    def __init__(self, *args: Any, offline: bool | None = None, project: str | None = "recurrentkit",
                 **kwargs: Any) -> None:
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            from .errors import ConfigError

            raise ConfigError("trainer.logger: W&B logging (recurrentkit.loggers.WandbLogger, e.g. from "
                              "recipes/_base/wandb.yaml) needs the wandb package: pip install wandb, or leave the "
                              "W&B config out (--trainer.logger=false, or another logger)")
        if offline is None:
            offline = os.environ.get("WANDB_MODE") in ("offline", "dryrun") or not wandb_credentials_available()
            if offline:
                rank_zero_info("W&B: no API key found (or WANDB_MODE=offline): logging offline; "
                               "upload later with `wandb sync`.")
        super().__init__(*args, offline=offline, project=project, **kwargs)
