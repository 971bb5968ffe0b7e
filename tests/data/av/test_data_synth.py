"""Synthetic generator: determinism, layouts, realism of the features, learnability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_testing import SIZES, assert_same_benchmark, feature_dir, text_of

from lowshot.data.av.datasets import DATASETS
from lowshot.data.av.featureset import STAGES, SequenceStore
from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.data.av.synth import (
    PRESETS,
    _model,
    generate_class,
    make_plan,
    make_synthetic_benchmark,
    write_synthetic,
)
from lowshot.errors import DataError


def test_lead_entry_point_clipclap_ucf() -> None:
    b = make_synthetic_benchmark(preset="clipclap", dataset="UCF", seed=0, size=0.1)
    assert b.name == "UCF/cls"
    assert b.num_classes == 101
    assert b.class_embeddings.shape == (101, 512 + 1024)
    assert b.splits["stage_1_train"].dims == (1024, 512)
    assert (b.audio_step, b.video_step) == (None, None)
    assert b.metadata["audio_kind"] == "clap" and b.metadata["video_kind"] == "clip"
    # ~10% of the real UCF video counts (at least 2 per class in stage-1 train)
    assert abs(len(b.splits["stage_1_train"]) - 317) <= 1
    assert len(b.split_classes["stage_2_test_unseen"]) == 6


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = make_synthetic_benchmark(preset="clipclap", dataset="UCF", seed=3, size=0.02)
    b = make_synthetic_benchmark(preset="clipclap", dataset="UCF", seed=3, size=0.02)
    c = make_synthetic_benchmark(preset="clipclap", dataset="UCF", seed=4, size=0.02)
    assert_same_benchmark(a, b)
    assert a.class_names != c.class_names
    assert not np.array_equal(
        a.splits["stage_1_train"].audio[:5], c.splits["stage_1_train"].audio[:5]
    )


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_written_tree_loads_to_the_in_memory_benchmark(preset: str, synth_tree) -> None:
    root = synth_tree(preset)
    # the C3D presets are slow to generate: one split is enough for them
    for split in ("cls", "main") if "cls_" not in preset else ("cls",):
        loaded = load_gzsl_benchmark(
            root, "UCF", feature_dir(preset), split, text=text_of(preset), trust_pickle=True
        )
        made = make_synthetic_benchmark(
            preset=preset, dataset="UCF", seed=0, size=SIZES[preset], split=split
        )
        assert_same_benchmark(loaded, made)
        assert loaded.metadata["source"] == "released"


def test_released_files_look_like_the_archives(synth_tree) -> None:
    root = synth_tree("cls_temporal") / "UCF"
    fdir = root / "features" / "cls_features_non_averaged"
    assert sorted(p.name for p in (fdir / "audio").iterdir()) == sorted(STAGES)
    assert (fdir / "text" / "word_embeddings_ucf_normed.npy").is_file()
    for name in (
        "all_class.txt",
        "ucf_w2v_class_names.csv",
        "main_split/stage_2_train.csv",
        "cls_split/stage_1_train.txt",
    ):
        assert (root / "class-split" / name).is_file(), name
    header = (root / "class-split" / "cls_split" / "stage_1_train.csv").read_text().splitlines()[0]
    assert header == "filename,label,label_code"
    import pickle

    with open(next((fdir / "video" / "stage_1_train").glob("*.pkl")), "rb") as fh:
        obj = pickle.load(fh)
    assert set(obj) == {"features", "video_names", "fps"}
    assert isinstance(obj["video_names"][0], bytes) and obj["fps"][0] == 25
    assert obj["features"][0].ndim == 2 and obj["features"][0].shape[1] == 4096


def test_feature_families_have_the_real_value_ranges() -> None:
    plan = make_plan("cls_temporal", "VGGSound", seed=0, size=0.01)
    c = int(np.flatnonzero(plan.counts["stage_1_train"])[0])
    cf = generate_class(plan, _model(plan), "stage_1_train", c)
    assert all(a.dtype == np.uint8 and a.shape[1] == 128 for a in cf.audio)
    assert all(v.dtype == np.float32 and v.shape[1] == 4096 for v in cf.video)
    v = cf.video[0]
    assert v.min() >= 0 and (v == 0).mean() > 0.2  # post-ReLU
    assert len(np.unique(cf.audio[0])) > 20  # quantised, not binary
    # VGGSound clips are mostly 10 s: 10 VGGish steps (0.96 s), 15 C3D steps (0.64 s)
    assert (
        np.median([len(a) for a in cf.audio]) == 10 and np.median([len(v) for v in cf.video]) == 15
    )
    ucf = make_plan("cls_temporal", "UCF", seed=0, size=0.01)
    cf = generate_class(
        ucf, _model(ucf), "stage_1_train", int(np.flatnonzero(ucf.counts["stage_1_train"])[0])
    )
    assert (
        1 <= min(len(v) for v in cf.video) and len({len(v) for v in cf.video}) > 1
    )  # variable lengths
    c = make_synthetic_benchmark(preset="clipclap", dataset="UCF", seed=0, size=0.01)
    x = c.splits["stage_2_test_seen"]
    np.testing.assert_allclose(np.linalg.norm(x.audio, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(x.video, axis=1), 1, atol=2e-3)  # float16 on disk
    assert c.metadata["video_dtype"] == "float16"
    t = make_synthetic_benchmark(
        preset="cls_temporal", dataset="UCF", seed=0, size=0.001, split="main"
    )
    assert (t.audio_step, t.video_step) == (0.96, 0.64)
    assert isinstance(t.splits["stage_1_train"].audio, SequenceStore)


def test_size_one_is_real_scale_and_class_counts_are_real() -> None:
    for name, spec in DATASETS.items():
        plan = make_plan("clipclap", name, seed=0, size=1.0)
        assert len(plan.class_split.class_names) == spec.n_classes
        for stage in STAGES:
            assert plan.counts[stage].sum() == spec.stage_videos["main"][stage], (name, stage)
        for split in ("main", "cls"):
            got = {k: len(v) for k, v in plan.class_split.lists[split].items()}
            assert got == spec.stage_classes[split]


def test_write_synthetic_rerun_is_noop_and_conflicts_are_errors(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path, preset="clipclap", dataset="UCF", seed=1, size=0.01)
    marker = json.loads((path / ".lowshot_synth.json").read_text())
    assert marker["preset"] == "clipclap"
    stamp = {p: p.stat().st_mtime_ns for p in path.rglob("*.pkl")}
    assert write_synthetic(tmp_path, preset="clipclap", dataset="UCF", seed=1, size=0.01) == path
    assert stamp == {p: p.stat().st_mtime_ns for p in path.rglob("*.pkl")}
    with pytest.raises(DataError, match="another synthetic"):
        write_synthetic(tmp_path, preset="cls_temporal", dataset="UCF", seed=1, size=0.01)
    with pytest.raises(DataError, match="other classes"):
        write_synthetic(tmp_path, preset="main_averaged", dataset="UCF", seed=2, size=0.01)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_unknown_preset_and_dataset() -> None:
    with pytest.raises(DataError, match="did you mean 'clipclap'"):
        make_synthetic_benchmark(preset="clipclp")
    with pytest.raises(DataError, match="unknown dataset"):
        make_synthetic_benchmark(dataset="Kinetics")


# ----------------------------------------------------------------------------------------
# learnability: a closed-form zero-shot baseline (PCA + ridge to the class embeddings)


def _dense(x: np.ndarray | SequenceStore) -> np.ndarray:
    return x.mean() if isinstance(x, SequenceStore) else np.asarray(x, np.float32)


def _cosine_scores(
    x_train: np.ndarray, y_train: np.ndarray, text: np.ndarray, x_test: np.ndarray
) -> np.ndarray:
    """Ridge from z-scored, randomly projected features to the class embeddings; cosine scores."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    proj = np.random.default_rng(0).standard_normal((x_train.shape[1], 128)) / np.sqrt(
        x_train.shape[1]
    )
    a = ((x_train - mu) / sd) @ proj
    m = np.linalg.solve(a.T @ a + len(a) * np.eye(a.shape[1]), a.T @ text[y_train])
    pred = (((x_test - mu) / sd) @ proj) @ m
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    return pred @ (text / np.linalg.norm(text, axis=1, keepdims=True)).T


def _zsl_accuracy(b, stage: int) -> dict[str, float]:
    train = b.stage_train(stage)
    _, unseen, _, classes = b.stage_eval(stage)
    scores = {
        m: _cosine_scores(
            _dense(getattr(train, m)), train.labels, b.class_embeddings, _dense(getattr(unseen, m))
        )
        for m in ("audio", "video")
    }
    scores["both"] = scores["audio"] + scores["video"]
    out = {}
    for m, s in scores.items():
        pred = classes[np.argmax(s[:, classes], 1)]
        out[m] = float(np.mean([np.mean(pred[unseen.labels == c] == c) for c in classes]))
    return out


def test_zero_shot_task_is_learnable_but_not_saturated() -> None:
    b = make_synthetic_benchmark(preset="clipclap", dataset="ActivityNet", seed=0, size=0.05)
    acc = {m: np.mean([_zsl_accuracy(b, s)[m] for s in (1, 2)]) for m in ("audio", "video", "both")}
    chance = 1 / 50
    assert acc["both"] > 8 * chance, acc
    assert acc["both"] < 0.7, acc
    assert acc["both"] > acc["audio"] + 0.03 and acc["both"] > acc["video"] + 0.03, acc
    assert min(acc["audio"], acc["video"]) > 3 * chance, acc


def test_text_embeddings_are_the_class_semantics() -> None:
    plan = make_plan("main_averaged", "ActivityNet", seed=0, size=0.01)
    cs = plan.class_split
    fasttext = np.stack(
        [plan.text_tables["fasttext"][cs.manual[c]] for c in range(len(cs.class_names))]
    )
    np.testing.assert_allclose(fasttext, plan.semantics)
    np.testing.assert_allclose(np.linalg.norm(fasttext, axis=1), 1, atol=1e-5)
    clip = make_plan("clipclap", "ActivityNet", seed=0, size=0.01)
    keys = clip.class_split.manual
    for kind, dim in (("clip", 512), ("clap", 1024)):
        vec = np.stack([clip.text_tables[kind][k] for k in keys])
        assert vec.shape[1] == dim
        # noisy projections keep the semantic similarity structure
        g_sem, g_txt = clip.semantics @ clip.semantics.T, vec @ vec.T
        assert np.corrcoef(g_sem.ravel(), g_txt.ravel())[0, 1] > 0.8
