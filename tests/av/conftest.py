"""Fixtures of the AVCA/TCaF tests (tiny in-memory benchmarks, see av_tiny.py)."""

from __future__ import annotations

import pytest
from av_tiny import make_benchmark

from lowshot.data.av.featureset import GZSLBenchmark


@pytest.fixture(scope="session")
def tiny_temporal() -> GZSLBenchmark:
    return make_benchmark(temporal=True)


@pytest.fixture(scope="session")
def tiny_averaged() -> GZSLBenchmark:
    return make_benchmark(temporal=False)


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny models run faster (and far more predictably on a shared 2-core box) on one thread."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
