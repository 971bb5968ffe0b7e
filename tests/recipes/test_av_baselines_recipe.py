"""The AV baselines' paper settings run through the gzsl recipe on generated synthetic data, and
(slow, the done-when of issue 11) learn: ZSL above chance on seeds 42, 43 and 44 on the built-in
synthetic UCF-cls data."""

from __future__ import annotations

import math

import pytest
from av_tiny import RECIPE_SMOKE

from lowshot.config.paper import load_paper_config
from lowshot.recipes.gzsl import run_gzsl

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL_AVERAGED = ["model.embedding_hidden=32", "model.dim_out=8"]
SMALL_TEMPORAL = [
    "model.depth=1",
    "model.encoder_hidden=32",
    "model.decoder_hidden=32",
    "model.dim=32",
    "model.heads=2",
]
SMALL_AVCA = ["model.encoder_hidden=32", "model.decoder_hidden=32"]
#: setting -> (synthetic preset, tiny-model overrides)
SETTINGS = {
    "cjme.ucf_cls": ("cls_averaged", SMALL_AVERAGED),
    "avgzslnet.ucf_main": ("main_averaged", SMALL_AVERAGED),
    "cjme.ucf_clipclap": ("clipclap", SMALL_AVERAGED),
    "avgzslnet.ucf_clipclap": ("clipclap", SMALL_AVERAGED),
    "attention_fusion.ucf_cls": ("cls_temporal", SMALL_TEMPORAL),
    "perceiver.ucf_cls": ("cls_temporal", [*SMALL_TEMPORAL, "model.n_latents=4"]),
    "avca.ucf_clipclap": ("clipclap", SMALL_AVCA),
    "hyper_multiple.ucf_clipclap": ("clipclap", SMALL_AVCA),
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_setting_runs_both_stages_on_generated_data(setting: str, tmp_path) -> None:
    preset, small = SETTINGS[setting]
    summary = run_gzsl(
        load_paper_config(setting, [*RECIPE_SMOKE, f"data.synthetic={preset}", *small]), tmp_path / "run"
    )
    for key in ("S", "U", "HM", "ZSL"):
        value = summary.metrics[key].mean
        assert math.isfinite(value) and 0.0 <= value <= 100.0
    assert summary.expected["HM"] > 0  # provenance travels into the result


#: the shortened schedule of benchmarks/av_baselines.py quality (same for every baseline)
LEARN = [
    "train.epochs=10",
    "train.n_batches=50",
    "train.batch_size=64",
    "data.synthetic_size=0.1",
    "train.progress=false",
    "train.seeds=[42,43,44]",
]
#: the TCaF-family overrides of benchmarks/av_baselines.py (depth 1, narrower encoders, lr 1e-3)
TCAF_FAMILY = ["train.lr=1e-3", "model.depth=1", "model.encoder_hidden=128"]
#: Perceiver at reduced width (same architecture: cross-attention + latent self-attention per layer;
#: 8 latents of width 64 instead of 64 of width 300, which cost ~2.4 s per step on one thread) with
#: the TCaF-family overrides of benchmarks/av_baselines.py: ZSL 33.5 / 24.1 / 29.8 on seeds 42 / 43 / 44
PERCEIVER_SMALL = [*TCAF_FAMILY, "model.n_latents=8", "model.dim=64", "model.heads=2", "model.dim_head=32"]
LEARNING = {
    # CJME at size 0.1 was one or two test videos above chance (ZSL 18.7 / 21.0 / 20.9 on 81 videos) and at
    # 0.25 22.1 / 26.5 / 18.8 (232 videos); at the real video count (size 1.0, 853 unseen test
    # videos) ZSL 30.2 / 27.7 / 22.2, the lowest seed ~45 videos above chance; 106 s of one core for 3 seeds
    "cjme.ucf_cls": ("cls_averaged", ["data.synthetic_size=1.0"]),
    # Attention Fusion with TCaF's family overrides at 100 batches per epoch: at size 0.1 / 0.25 (81 / 232
    # unseen test videos) seed 43 stayed below chance at every stage-2 length (benchmarks/gzsl_selection.py);
    # at the real video count (853 videos) ZSL 29.6 / 23.0 / 39.8, seed 43 ~54 videos above chance and
    # above it at every stage-2 length from 2 epochs on (docs/benchmarks.md)
    "attention_fusion.ucf_cls": ("cls_temporal", [*TCAF_FAMILY, "train.n_batches=100", "data.synthetic_size=1.0"]),
    "avgzslnet.ucf_cls": ("cls_averaged", []),
    "perceiver.ucf_cls": ("cls_temporal", PERCEIVER_SMALL),
    "hyper_multiple.ucf_clipclap": ("clipclap", []),
}


@pytest.mark.slow
@pytest.mark.parametrize("setting", sorted(LEARNING))
def test_zsl_above_chance_on_every_seed(setting: str, tmp_path) -> None:
    preset, extra = LEARNING[setting]
    summary = run_gzsl(
        load_paper_config(setting, [*LEARN, f"data.synthetic={preset}", *extra]), tmp_path / "run"
    )
    chance = 100.0 / summary.extra["class_counts"]["test_unseen"]  # uniform guessing among the unseen classes
    assert summary.seeds == (42, 43, 44)
    assert all(r["ZSL"] > chance for r in summary.per_seed.values()), (chance, summary.per_seed)
