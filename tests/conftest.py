"""Test configuration: never touch the network, keep runs deterministic and small."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pathlib  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
RUN_SLOW = os.environ.get("RK_RUN_SLOW") == "1"

# Test tensors are small: one intra-op thread is faster than two, and far faster on a loaded machine.
torch.set_num_threads(int(os.environ.get("RK_TEST_THREADS", "1")))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "slow" in item.keywords and not RUN_SLOW:
            item.add_marker(pytest.mark.skip(reason="slow test: set RK_RUN_SLOW=1 to run it"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device; none is visible"))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_data():
    """The real corpora in ../shared/data, or a skip that says they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared corpora are not at {SHARED_DATA}")
    return SHARED_DATA
