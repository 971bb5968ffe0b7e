"""Helpers shared by the data-layer tests (a uniquely named module, not conftest)."""

from __future__ import annotations

import numpy as np

from lowshot.data.av.featureset import STAGES, FeatureSet, GZSLBenchmark, SequenceStore
from lowshot.data.av.synth import PRESETS

#: small sizes per preset (C3D presets are the slow ones)
SIZES = {
    "clipclap": 0.03,
    "cls_temporal": 0.01,
    "main_temporal": 0.02,
    "cls_averaged": 0.01,
    "main_averaged": 0.02,
}
TEXT = {"clipclap": ("clip", "clap")}


def text_of(preset: str) -> tuple[str, ...]:
    return TEXT.get(preset, ("fasttext",))


def feature_dir(preset: str) -> str:
    return PRESETS[preset].feature_dir


def _flat(x: np.ndarray | SequenceStore) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(x, SequenceStore):
        return np.concatenate([np.asarray(x[i]) for i in range(len(x))]), x.lengths
    return np.asarray(x), np.ones(len(x), np.int64)


def assert_same_featureset(a: FeatureSet, b: FeatureSet) -> None:
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.video_ids, b.video_ids)
    for m in ("audio", "video"):
        (xa, la), (xb, lb) = _flat(getattr(a, m)), _flat(getattr(b, m))
        assert xa.dtype == xb.dtype, m
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(xa, xb)


def assert_same_benchmark(a: GZSLBenchmark, b: GZSLBenchmark) -> None:
    assert a.name == b.name
    assert a.class_names == b.class_names
    np.testing.assert_array_equal(a.class_embeddings, b.class_embeddings)
    assert set(a.split_classes) == set(b.split_classes)
    for k in a.split_classes:
        np.testing.assert_array_equal(a.split_classes[k], b.split_classes[k])
    assert (a.audio_step, a.video_step) == (b.audio_step, b.video_step)
    assert set(a.splits) == set(b.splits) == set(STAGES)
    for stage in STAGES:
        assert_same_featureset(a.splits[stage], b.splits[stage])
    for key in (
        "audio_kind",
        "video_kind",
        "layout",
        "audio_dtype",
        "video_dtype",
        "split",
        "text",
    ):
        assert a.metadata[key] == b.metadata[key], key
