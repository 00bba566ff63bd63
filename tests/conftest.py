import logging
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
logging.basicConfig(level=logging.INFO)


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device; run on the lent GPU machine, never in CI")
    config.addinivalue_line("markers", "slow: takes more than a few seconds on the 2-core CPU")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    # GPU checks are deselected (not skipped) on CPU machines: they belong to the device runs.
    selected = [item for item in items if "gpu" not in item.keywords]
    deselected = [item for item in items if "gpu" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
