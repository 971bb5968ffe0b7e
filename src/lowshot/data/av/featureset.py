"""One in-memory representation for every released audio-visual feature layout.

Averaged (AVCA h5) and per-video vector (ClipClap) features are dense ``[N, D]`` arrays;
temporal features (TCaF / AV-Diff pickles) are :class:`SequenceStore` objects that keep
``[T_i, D]`` sequences in one or more flat ``[sum T, D]`` blocks (plain arrays or
``np.memmap``), so VGGSound-cls-sized C3D sequences never have to sit in RAM at once.

A :class:`FeatureSet` pairs audio and video features of the same videos with their global
class indices; a :class:`GZSLBenchmark` holds the stage splits of one dataset together with
class names and class-label embeddings aligned **by class name**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lowshot.errors import DataError

STAGES = (
    "stage_1_train",
    "stage_1_val_seen",
    "stage_1_val_unseen",
    "stage_2_test_seen",
    "stage_2_test_unseen",
)
#: stage folders whose union is the stage-2 training set (the code never reads stage_2_train/)
STAGE_2_TRAIN_FOLDERS = ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")
#: class-list files (``class-split/<split>/<name>.txt``)
CLASS_LISTS = STAGES[:3] + ("stage_2_train",) + STAGES[3:]


class SequenceStore:
    """Variable-length sequences ``[T_i, D]`` backed by flat blocks (arrays or memmaps).

    Args:
        blocks: flat feature blocks, each ``[sum T, D]`` (same ``D`` and dtype family).
        block_ids: ``[N]`` block of each sequence.
        starts: ``[N]`` first row of each sequence inside its block.
        lengths: ``[N]`` number of steps ``T_i`` (>= 1).
    """

    def __init__(
        self,
        blocks: Sequence[np.ndarray],
        block_ids: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self.blocks = list(blocks)
        if not self.blocks:
            raise DataError("a SequenceStore needs at least one block")
        dims = {b.shape[1] for b in self.blocks}
        if len(dims) != 1:
            raise DataError(f"feature blocks disagree on the feature dimension: {sorted(dims)}")
        self.block_ids = np.asarray(block_ids, dtype=np.int32)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if not (len(self.block_ids) == len(self.starts) == len(self.lengths)):
            raise DataError("block_ids, starts and lengths must have the same length")

    @classmethod
    def from_arrays(cls, sequences: Sequence[np.ndarray]) -> SequenceStore:
        """Pack a list of ``[T_i, D]`` arrays into one block (copies once)."""
        if len(sequences) == 0:
            raise DataError("cannot build a SequenceStore from an empty list")
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        block = np.concatenate([np.asarray(s) for s in sequences], axis=0)
        return cls([block], np.zeros(len(sequences), np.int32), starts, lengths)

    @property
    def dim(self) -> int:
        """``D``, the feature dim (of the first block)."""
        return int(self.blocks[0].shape[1])

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first block."""
        return self.blocks[0].dtype

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        """Sequence ``i`` as a ``[T_i, D]`` view (no copy for memmaps until read)."""
        s = int(self.starts[i])
        return self.blocks[int(self.block_ids[i])][s : s + int(self.lengths[i])]

    def subset(self, indices: np.ndarray) -> SequenceStore:
        """The sequences ``indices`` (``[M]``, in that order), sharing the blocks (no copy)."""
        idx = np.asarray(indices, dtype=np.int64)
        return SequenceStore(self.blocks, self.block_ids[idx], self.starts[idx], self.lengths[idx])

    @staticmethod
    def concat(stores: Sequence[SequenceStore]) -> SequenceStore:
        """One store holding the sequences of ``stores`` in order, sharing their blocks (no copy)."""
        blocks: list[np.ndarray] = []
        ids, starts, lengths = [], [], []
        for store in stores:
            ids.append(store.block_ids + len(blocks))
            blocks.extend(store.blocks)
            starts.append(store.starts)
            lengths.append(store.lengths)
        return SequenceStore(blocks, np.concatenate(ids), np.concatenate(starts), np.concatenate(lengths))

    def mean(self) -> np.ndarray:
        """Time-averaged features ``[N, D]`` float32 (the AVCA 'averaged' view)."""
        out = np.empty((len(self), self.dim), np.float32)
        for i in range(len(self)):
            out[i] = np.asarray(self[i], dtype=np.float32).mean(0)
        return out


Features = np.ndarray | SequenceStore


def _n(features: Features) -> int:
    return len(features)


def _subset(features: Features, idx: np.ndarray) -> Features:
    return features.subset(idx) if isinstance(features, SequenceStore) else features[idx]


def _concat(parts: Sequence[Features]) -> Features:
    if all(isinstance(p, SequenceStore) for p in parts):
        return SequenceStore.concat(parts)  # type: ignore[arg-type]
    if any(isinstance(p, SequenceStore) for p in parts):
        raise DataError("cannot concatenate temporal and dense features")
    return np.concatenate(parts, axis=0)


@dataclass(frozen=True)
class FeatureSet:
    """Audio and video features of the same videos, in the same order.

    Attributes:
        audio: ``[N, D_a]`` array or SequenceStore of ``[T_a, D_a]``.
        video: ``[N, D_v]`` array or SequenceStore of ``[T_v, D_v]``.
        labels: ``[N]`` int64 global class indices (into ``GZSLBenchmark.class_names``).
        video_ids: ``[N]`` video identifiers (str).
    """

    audio: Features
    video: Features
    labels: np.ndarray
    video_ids: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.labels)
        if not (_n(self.audio) == _n(self.video) == n == len(self.video_ids)):
            raise DataError(
                f"feature set sizes disagree: audio {_n(self.audio)}, video {_n(self.video)}, "
                f"labels {n}, ids {len(self.video_ids)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def temporal(self) -> bool:
        """True when the features are sequences (:class:`SequenceStore`), False when dense ``[N, D]``."""
        return isinstance(self.audio, SequenceStore)

    @property
    def dims(self) -> tuple[int, int]:
        """(D_a, D_v)."""
        da = self.audio.dim if isinstance(self.audio, SequenceStore) else self.audio.shape[1]
        dv = self.video.dim if isinstance(self.video, SequenceStore) else self.video.shape[1]
        return int(da), int(dv)

    def subset(self, indices: np.ndarray) -> FeatureSet:
        """The samples ``indices`` (``[M]``, in that order); sequences share their blocks."""
        idx = np.asarray(indices, dtype=np.int64)
        return FeatureSet(_subset(self.audio, idx), _subset(self.video, idx), self.labels[idx], self.video_ids[idx])

    def select_classes(self, classes: np.ndarray) -> FeatureSet:
        """Keep only samples whose label is in ``classes`` (e.g. the cls-split test list)."""
        return self.subset(np.flatnonzero(np.isin(self.labels, classes)))

    @staticmethod
    def concat(sets: Sequence[FeatureSet]) -> FeatureSet:
        """The samples of ``sets`` in order.

        Raises:
            DataError: temporal and dense features are mixed.
        """
        return FeatureSet(
            _concat([s.audio for s in sets]),
            _concat([s.video for s in sets]),
            np.concatenate([s.labels for s in sets]),
            np.concatenate([s.video_ids for s in sets]),
        )


@dataclass(frozen=True)
class GZSLBenchmark:
    """One dataset's GZSL (or GFSL) benchmark in memory.

    Attributes:
        name: e.g. ``"UCF/cls"``.
        class_names: all original class names, in code-point sorted order (index = label).
        class_embeddings: ``[C, D_w]`` float32 label embeddings, row c for class c.
        splits: stage name (see :data:`STAGES`) -> FeatureSet, already filtered by its class list.
        split_classes: class-list name (see :data:`CLASS_LISTS`) -> sorted int64 class indices.
        audio_step: seconds per audio step (temporal features) or None.
        video_step: seconds per video step or None.
    """

    name: str
    class_names: tuple[str, ...]
    class_embeddings: np.ndarray
    splits: dict[str, FeatureSet]
    split_classes: dict[str, np.ndarray]
    audio_step: float | None = None
    video_step: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.class_embeddings.shape[0] != len(self.class_names):
            raise DataError(
                f"{self.name}: {self.class_embeddings.shape[0]} class embeddings for "
                f"{len(self.class_names)} classes"
            )
        for stage, fs in self.splits.items():
            if len(fs) == 0:
                raise DataError(f"{self.name}: split '{stage}' is empty")

    @property
    def num_classes(self) -> int:
        """``C``, the number of classes of the dataset (all stages)."""
        return len(self.class_names)

    def stage_train(self, stage: int) -> FeatureSet:
        """Training samples of stage 1 (stage_1_train) or 2 (union of the stage-1 folders)."""
        if stage == 1:
            return self.splits["stage_1_train"]
        return FeatureSet.concat([self.splits[s] for s in STAGE_2_TRAIN_FOLDERS])

    def stage_eval(self, stage: int) -> tuple[FeatureSet, FeatureSet, np.ndarray, np.ndarray]:
        """(seen set, unseen set, seen classes, unseen classes) evaluated at ``stage``."""
        if stage == 1:
            return (
                self.splits["stage_1_val_seen"],
                self.splits["stage_1_val_unseen"],
                self.split_classes["stage_1_val_seen"],
                self.split_classes["stage_1_val_unseen"],
            )
        return (
            self.splits["stage_2_test_seen"],
            self.splits["stage_2_test_unseen"],
            self.split_classes["stage_2_test_seen"],
            self.split_classes["stage_2_test_unseen"],
        )

    def train_classes(self, stage: int) -> np.ndarray:
        """Sorted global indices of the training classes of ``stage`` (1: stage_1_train, 2: stage_2_train)."""
        return self.split_classes["stage_1_train" if stage == 1 else "stage_2_train"]
