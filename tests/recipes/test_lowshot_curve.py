"""The low-shot curve on tiny data: one class partition from k = 0 to k > 0, novel accuracy above chance, table and plot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from gfsl_tiny import TINY_AVDIFF

from lowshot.methods.av.avdiff import AVDiffConfig
from lowshot.methods.av.tcaf import TCaFConfig
from lowshot.recipes.gfsl import GFSLProtocolConfig
from lowshot.recipes.gzsl_config import DataConfig, TrainConfig
from lowshot.recipes.lowshot_curve import CurveEntry, curve_points, resolve_entry
from lowshot.reports.lowshot_curve import aggregate_curve, write_curve

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = TrainConfig(epochs=4, batch_size=32, n_batches=8, lr=3e-3, device="cpu", progress=False)
TCAF = TCaFConfig(dim=32, encoder_hidden=32, decoder_hidden=32, dim_out=16, pos_dim=8, depth=2, heads=2, dim_head=8, mlp_dim=32)
ENTRIES = [
    CurveEntry("tcaf", "tcaf", TCAF, DataConfig(), TRAIN, GFSLProtocolConfig(beta_grid=(0.0, 3.0, 16), epochs_fine_tune=4),
               (0.0, 3.0, 16)),
    CurveEntry("avdiff", "avdiff", AVDiffConfig(**TINY_AVDIFF), DataConfig(), TRAIN, GFSLProtocolConfig(epochs_fine_tune=4), None),
]  # fmt: skip


def test_default_entries_resolve_from_the_paper_settings() -> None:
    tcaf = resolve_entry("tcaf", "ucf", ["train.epochs=2", "tcaf:model.depth=1", "avdiff:model.attention_switch=0"])
    assert tcaf.model.depth == 1
    assert tcaf.gzsl_betas == (0.0, 3.0, 16) and tcaf.protocol.epochs_fine_tune == 2 and tcaf.data.split == "cls"
    avdiff = resolve_entry("avdiff", "ucf")
    assert avdiff.gzsl_betas is None and avdiff.protocol.beta_grid == (0.0, 1.0, 11)
    assert avdiff.data.synthetic is None and avdiff.data.feature_dir == "cls_features_non_averaged"
    assert resolve_entry("clipclap", "ucf").data.text == ("clip", "clap")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_novel_accuracy_above_chance_at_every_k(tiny_temporal, tmp_path: Path, seed: int) -> None:
    rows = []
    for entry in ENTRIES:
        rows += curve_points(entry, tiny_temporal, (0, 1, 5), (seed,))
    chance = 100 / 20  # N: novel test samples, predictions over all 20 classes
    assert {(r["method"], r["k"]) for r in rows} == {("tcaf", 0), ("tcaf", 1), ("tcaf", 5), ("avdiff", 1), ("avdiff", 5)}
    for r in rows:
        assert r["N"] > 2 * chance, r
    write_curve(rows, tmp_path, "tiny")
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert (tmp_path / "curve.md").read_text().count("\n") == 2 + len(aggregate_curve(rows))


def test_synthetic_data_of_another_size_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    """A rerun with another ``--synthetic-size`` must not silently reuse the first run's tree."""
    from lowshot.errors import DataError
    from lowshot.recipes.gzsl import load_benchmark

    data = DataConfig(dataset="UCF", split="cls", feature_dir="cls_features", synthetic="cls_averaged", synthetic_size=0.02)
    assert len(load_benchmark(data, None, tmp_path).splits["stage_1_train"]) > 0
    load_benchmark(data, None, tmp_path)  # same parameters: reused
    with pytest.raises(DataError, match="another synthetic benchmark"):
        load_benchmark(replace(data, synthetic_size=0.04), None, tmp_path)


#: AV-Diff whose generator learns within the run: the thesis' amount of noise in 20 steps
#: (beta 1e-4 -> 0.2: sqrt(alpha_bar_T) 0.34, about 1e-4 -> 0.02 over the published T = 200) and
#: 300 steps per phase. With TINY_AVDIFF's T = 20 (sqrt(alpha_bar_T) 0.90) and 32 steps the
#: generated features are noise labelled as novel classes and N does not rise with k.
LEARNT_GENERATOR = AVDiffConfig(**{**TINY_AVDIFF, "beta_end": 0.2})
CURVE_TRAIN = TrainConfig(epochs=6, batch_size=32, n_batches=50, lr=3e-3, device="cpu", progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_avdiff_novel_accuracy_rises_with_k(seed: int) -> None:
    from av_tiny import make_benchmark

    # harder than tiny_temporal (noise 2: one shot is a poor class estimate) and 30 unseen
    # videos per class, so that k = 20 leaves 10 per class to test
    bench = make_benchmark(noise=2.0, per_class={"stage_1_val_unseen": 30, "stage_2_test_unseen": 30})
    entry = CurveEntry("avdiff", "avdiff", LEARNT_GENERATOR, DataConfig(), CURVE_TRAIN, GFSLProtocolConfig(epochs_fine_tune=6), None)
    n = {r["k"]: r["N"] for r in curve_points(entry, bench, (1, 5, 10, 20), (seed,))}
    chance = 100 / 20
    assert min(n.values()) > 2 * chance, n
    assert n[20] > n[1], n  # not monotone in between on every seed (seed 1: 82.4, 80.2, 89.2, 86.7)


def test_a_rerun_reuses_finished_points_and_refuses_another_setting(tmp_path: Path, monkeypatch) -> None:
    """Points are written as they finish: a killed curve resumes where it stopped."""
    import lowshot.recipes.lowshot_curve as curve
    from lowshot.errors import ConfigError

    calls: list[tuple[int, int]] = []

    def fake_fit(entry, bench, k, seed):
        calls.append((k, seed))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while computing the third point
        return {"B": 1.0 * k, "N": 2.0, "HM": 3.0, "FSL": float(seed)}

    monkeypatch.setattr(curve, "fit_point", fake_fit)
    args = dict(dataset="ucf", out=tmp_path, shots=(0, 1), seeds=(0, 1), synthetic_size=0.02)
    with pytest.raises(KeyboardInterrupt):
        curve.run_curve(["avca"], **args)
    assert sorted(p.name for p in (tmp_path / "points").iterdir()) == ["avca_k0_seed0.json", "avca_k1_seed0.json"]
    rows = curve.run_curve(["avca"], **args)
    assert calls == [(0, 0), (1, 0), (0, 1), (0, 1), (1, 1)]  # the two finished points are not redone
    assert [(r["k"], r["seed"], r["B"], r["FSL"]) for r in rows] == [(0, 0, 0.0, 0.0), (1, 0, 1.0, 0.0), (0, 1, 0.0, 1.0), (1, 1, 1.0, 1.0)]
    with pytest.raises(ConfigError, match=r"avca_k0_seed0\.json: this point was computed with another setting"):
        curve.run_curve(["avca"], **args, overrides=["train.lr=0.5"])
