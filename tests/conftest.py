import logging
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
logging.basicConfig(level=logging.INFO)


@pytest.fixture(scope="session")
def tiny_runtime():
    """The tiny preset's runtime, shared by the tests that drive StorySession on it (it keeps no story state)."""
    from iamflow.config import load_config
    from iamflow.session import Runtime

    return Runtime.load(load_config(preset="tiny"))


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
