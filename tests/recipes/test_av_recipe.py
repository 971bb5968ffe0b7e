"""The paper configs run through the lead's ``gzsl`` recipe on generated synthetic data."""

from __future__ import annotations

import json
import math

import pytest
from av_tiny import RECIPE_SMOKE

import lowshot.methods.av.avca  # noqa: F401  (registers avca)
import lowshot.methods.av.tcaf  # noqa: F401  (registers tcaf)
from lowshot.config.paper import load_paper_config
from lowshot.recipes.gzsl import run_gzsl

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("setting", "extra"),
    [
        (
            "avca.ucf_cls",
            ["data.synthetic=cls_averaged", "model.encoder_hidden=64", "model.decoder_hidden=64"],
        ),
        (
            "tcaf.ucf_cls",
            [
                "data.synthetic=cls_temporal",
                "model.depth=1",
                "model.encoder_hidden=64",
                "model.decoder_hidden=64",
            ],
        ),
    ],
)
def test_paper_config_runs_through_the_recipe(setting: str, extra: list[str], tmp_path) -> None:
    config = load_paper_config(setting, RECIPE_SMOKE + extra)
    summary = run_gzsl(config, tmp_path / "run")
    for key in ("S", "U", "HM", "ZSL"):
        value = summary.metrics[key].mean
        assert math.isfinite(value) and 0.0 <= value <= 100.0
    assert summary.expected["HM"] > 0  # provenance travels into the result
    seed_dir = next((tmp_path / "run").glob("seed_*"))
    assert json.loads((seed_dir / "result.json").read_text())["best_epoch"] in (0, 1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setting", "extra"),
    [
        ("avca.ucf_cls", ["data.synthetic=cls_averaged"]),
        (
            "tcaf.ucf_cls",
            [
                "data.synthetic=cls_temporal",
                "model.depth=1",
                "model.encoder_hidden=128",
                "train.lr=1e-3",
            ],
        ),
    ],
)
def test_learns_on_generated_ucf_cls_data(setting: str, extra: list[str], tmp_path) -> None:
    """Published config (shortened) on the synthetic UCF-cls generator: HM well above chance."""
    config = load_paper_config(
        setting,
        [
            "train.epochs=3",
            "train.n_batches=15",
            "train.batch_size=64",
            "train.progress=false",
            "data.synthetic_size=0.1",
            *extra,
        ],
    )
    summary = run_gzsl(config, tmp_path / "run")
    n_classes = sum(summary.extra["class_counts"].values())  # classes competing at test time
    chance_hm = 100.0 / n_classes  # uniform guessing: S = U = 1 / C
    assert summary.metrics["HM"].mean > 3 * chance_hm, summary.metrics
