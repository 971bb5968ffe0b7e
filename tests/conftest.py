"""Shared fixtures: the optional ../shared/data tree, offline Hugging Face settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["adverb_fixtures", "av_fixtures"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

if "PYTEST_XDIST_WORKER" in os.environ:  # under pytest -n N: share the cores instead of oversubscribing them
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LOWSHOT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data`` (public benchmark-definition files); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark files not found at {SHARED_DATA}")
    return SHARED_DATA
