"""Fixtures of the audio-visual tests (a pytest plugin, loaded by tests/conftest.py): tiny
in-memory benchmarks for the AVCA/TCaF tests (see av_tiny.py) and small synthetic trees in
the released layouts for the data-layer tests (see data_testing.py). Modules that want
single-threaded torch ask for it (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from av_tiny import make_benchmark
from data_testing import SIZES

from lowshot.data.av.featureset import GZSLBenchmark
from lowshot.data.av.synth import write_synthetic


@pytest.fixture(scope="session")
def tiny_temporal() -> GZSLBenchmark:
    return make_benchmark(temporal=True)


@pytest.fixture(scope="session")
def tiny_averaged() -> GZSLBenchmark:
    return make_benchmark(temporal=False)


@pytest.fixture(scope="session")
def synth_tree(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """preset -> data root holding a UCF synthetic tree of that preset (built once)."""
    cache: dict[str, Path] = {}

    def get(preset: str) -> Path:
        if preset not in cache:
            root = tmp_path_factory.mktemp(f"synth_{preset}")
            write_synthetic(root, preset=preset, dataset="UCF", seed=0, size=SIZES[preset])
            cache[preset] = root
        return cache[preset]

    return get


@pytest.fixture()
def tree_copy(synth_tree: Callable[[str], Path], tmp_path: Path) -> Callable[[str], Path]:
    """preset -> a private copy of the synthetic tree (for tests that damage files)."""

    def get(preset: str) -> Path:
        dst = tmp_path / preset
        shutil.copytree(synth_tree(preset), dst)
        return dst

    return get
