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


#: the means and published numbers of :func:`gzsl_result_dir` (x100)
RESULT_MEANS = dict(zip(("S", "U", "HM", "ZSL"), (70.0, 40.0, 50.9, 45.0)))
RESULT_EXPECTED = {"S": 77.14, "U": 43.91, "HM": 55.97, "ZSL": 46.96}


@pytest.fixture
def gzsl_result_dir(tmp_path: Path) -> Path:
    """A run dir holding a two-seed GZSL ``result.json`` (seeds 1, 2: each mean -/+ 0.5; a legacy switch on)."""
    from lowshot.utils.results import make_result, write_result

    result = make_result(
        setting="clipclap.ucf", family="av_gzsl", method="clipclap",
        per_seed={1: {k: m - 0.5 for k, m in RESULT_MEANS.items()}, 2: {k: m + 0.5 for k, m in RESULT_MEANS.items()}},
        unit="x100", selection="validation HM", config={"model": {"legacy_train_extra_pass": True}},
        provenance={"paper": "Kurzendörfer et al.", "table": "5.1", "expected": RESULT_EXPECTED},
        metric_order=RESULT_MEANS,
    )  # fmt: skip
    write_result(tmp_path, result)
    return tmp_path

