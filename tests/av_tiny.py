"""Tiny, learnable audio-visual GZSL benchmarks built in memory for the AVCA/TCaF tests.

Each class ``c`` has a random label embedding ``w_c``; every audio/video time step is a fixed
linear map of ``w_c`` plus noise, so a model that learns the map from seen classes can
recognise unseen ones (zero-shot transfer is possible, chance is not enough).
"""

from __future__ import annotations

import numpy as np

from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark, SequenceStore
from lowshot.methods.base import InputSpec

D_A, D_V, D_W = 12, 20, 8
#: small widths of the cross-attention methods in tests (AVCA, Hyper-multiple)
AVCA_TINY = dict(dim=24, encoder_hidden=32, decoder_hidden=32, dim_out=8, heads=2, dim_head=12, mlp_dim=16)
#: small widths of the TCaF-family transformers in tests (TCaF, Attention Fusion, Perceiver)
TCAF_TINY = dict(
    dim=24, encoder_hidden=32, decoder_hidden=32, dim_out=8, pos_dim=8, depth=2, heads=2, dim_head=8, mlp_dim=16
)
#: run-level overrides of a recipe smoke run: 2 epochs of 3 batches of 32 on 3 % synthetic data
RECIPE_SMOKE = [
    "train.epochs=2",
    "train.n_batches=3",
    "train.batch_size=32",
    "train.progress=false",
    "data.synthetic_size=0.03",
]
AUDIO_STEP, VIDEO_STEP = 0.96, 0.64
N_CLASSES = 20
#: class lists of the tiny split: 10 stage-1 training classes, 4 validation-unseen, 6 test-unseen
SPLIT = {
    "stage_1_train": list(range(10)),
    "stage_1_val_seen": list(range(10)),
    "stage_1_val_unseen": list(range(10, 14)),
    "stage_2_train": list(range(14)),
    "stage_2_test_seen": list(range(14)),
    "stage_2_test_unseen": list(range(14, 20)),
}
#: samples per class in each stage folder
PER_CLASS = {
    "stage_1_train": 16,
    "stage_1_val_seen": 4,
    "stage_1_val_unseen": 8,
    "stage_2_test_seen": 4,
    "stage_2_test_unseen": 8,
}


def make_benchmark(
    seed: int = 0, noise: float = 0.5, temporal: bool = True, per_class: dict[str, int] | None = None
) -> GZSLBenchmark:
    """A 20-class benchmark with temporal (or time-averaged) features; ``per_class`` overrides
    :data:`PER_CLASS` for some stage folders (e.g. more unseen videos for k-shot draws)."""
    rng = np.random.default_rng(seed)
    n_classes = N_CLASSES
    w = rng.standard_normal((n_classes, D_W)).astype(np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    map_a = rng.standard_normal((D_W, D_A)).astype(np.float32)
    map_v = rng.standard_normal((D_W, D_V)).astype(np.float32)
    splits = {}
    for stage, n in {**PER_CLASS, **(per_class or {})}.items():
        labels = np.repeat(SPLIT[stage], n)
        audio, video = [], []
        for c in labels:
            ta, tv = int(rng.integers(3, 9)), int(rng.integers(4, 13))
            audio.append((w[c] @ map_a + noise * rng.standard_normal((ta, D_A))).astype(np.float32))
            video.append((w[c] @ map_v + noise * rng.standard_normal((tv, D_V))).astype(np.float32))
        ids = np.array([f"{stage}_{i}" for i in range(len(labels))])
        if temporal:
            fs = FeatureSet(
                SequenceStore.from_arrays(audio), SequenceStore.from_arrays(video), labels, ids
            )
        else:
            fs = FeatureSet(
                np.stack([a.mean(0) for a in audio]),
                np.stack([v.mean(0) for v in video]),
                labels,
                ids,
            )
        splits[stage] = fs
    return GZSLBenchmark(
        name="tiny",
        class_names=tuple(f"class{c}" for c in range(n_classes)),
        class_embeddings=w,
        splits=splits,
        split_classes={k: np.array(v, np.int64) for k, v in SPLIT.items()},
        audio_step=AUDIO_STEP if temporal else None,
        video_step=VIDEO_STEP if temporal else None,
    )


def tiny_spec(temporal: bool = True) -> InputSpec:
    return InputSpec(
        D_A, D_V, D_W, AUDIO_STEP if temporal else None, VIDEO_STEP if temporal else None
    )
