"""Assemble a :class:`~lowshot.data.av.featureset.GZSLBenchmark` from a data root.

Users unzip the released archives unchanged under one data root (argument, or the
``LOWSHOT_DATA_ROOT`` environment variable)::

    <root>/<DS>/class-split/...                      (all_class.txt, name CSVs, {main,cls}_split/)
    <root>/<DS>/features/<feature_dir>/{audio,video}/<stage>/<Class>.{h5,pkl}
    <root>/<DS>/features/<feature_dir>/text/*_normed.npy

:func:`load_gzsl_benchmark` reads such a released tree, or the pickle-free converted tree
written by ``lowshot data convert`` (recommended; memory-mapped, see
:mod:`lowshot.data.av.safe_format`), and returns the same benchmark for both: stage splits
filtered by the split's ``.txt`` class lists, class-label embeddings attached by class name
and concatenated in the order of ``text``, step rates and feature kinds in the metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lowshot._registry import BENCHMARKS
from lowshot.data.av.datasets import SPLITS, AVDatasetSpec, FeatureFamily, dataset_spec
from lowshot.data.av.embeddings import (
    EmbeddingDict,
    attach_embeddings,
    find_embedding_file,
    read_embedding_dict,
)
from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark
from lowshot.data.av.safe_format import ConvertedFeatureDir, is_converted
from lowshot.data.av.source import (
    FeatureSource,
    dataset_dir,
    read_split_features,
)
from lowshot.data.av.splits import ClassSplit, load_class_split
from lowshot.data.av.tree import ReleasedFeatureDir, stage_feature_set
from lowshot.errors import DataError
from lowshot.utils.paths import resolve_data_root

log = logging.getLogger(__name__)


class _Released:
    """Adapter of :class:`ReleasedFeatureDir` to :class:`FeatureSource`."""

    kind = "released"

    def __init__(self, tree: ReleasedFeatureDir) -> None:
        self.tree = tree
        self.layout = tree.layout
        self.family = tree.family
        self._dtypes: tuple[str, str] | None = None

    @property
    def text_dir(self) -> Path:
        return self.tree.text_dir

    def present_classes(self, stage: str) -> set[int]:
        return {f.class_index for f in self.tree.class_files(stage)}

    def read_stage(self, stage: str, keep: np.ndarray | None = None) -> FeatureSet:
        parts = list(self.tree.iter_classes(stage, keep))
        if not parts:
            raise DataError(f"{self.tree.path}: no feature files for stage '{stage}'")
        if self._dtypes is None:
            self._dtypes = (
                str(np.asarray(parts[0].audio[0]).dtype),
                str(np.asarray(parts[0].video[0]).dtype),
            )
        return stage_feature_set(parts, self.layout == "temporal")

    def dtypes(self) -> tuple[str, str]:
        return self._dtypes or ("unknown", "unknown")


def open_feature_source(path: Path, class_split: ClassSplit, trust_pickle: bool) -> FeatureSource:
    """Converted tree if ``path`` holds the converted-format marker, else the released reader."""
    if is_converted(path):
        return ConvertedFeatureDir(path, class_split.classes)
    return _Released(ReleasedFeatureDir(path, class_split.classes, trust_pickle))


def load_text_tables(
    text_dir: Path, text: Sequence[str], spec: AVDatasetSpec, trust_pickle: bool
) -> list[tuple[str, EmbeddingDict, Path]]:
    """(kind, dict, file) for each requested text kind, read from ``text_dir``."""
    out = []
    for kind in text:
        path = find_embedding_file(text_dir, kind, spec)
        out.append((kind, read_embedding_dict(path, trust_pickle), path))
    return out


def build_benchmark(
    name: str,
    class_split: ClassSplit,
    split: str,
    splits: dict[str, FeatureSet],
    text_tables: Sequence[tuple[str, EmbeddingDict, Path]],
    family: FeatureFamily,
    legacy_text_order: bool = False,
    metadata: dict[str, str] | None = None,
) -> GZSLBenchmark:
    """Attach class embeddings and metadata to already filtered stage feature sets.

    Args:
        name: benchmark name, e.g. ``UCF/cls``.
        class_split: class names, mappings and lists.
        split: ``main`` or ``cls``.
        splits: stage -> FeatureSet (filtered by the split's class lists).
        text_tables: (kind, dict, file) in concatenation order.
        family: feature family (kinds, dims, steps).
        legacy_text_order: reproduce the §6.1 embedding-row misalignment.
        metadata: extra metadata entries.

    Returns:
        The benchmark; ``class_embeddings`` is ``[C, sum D_kind]`` float32.
    """
    lists = class_split.split_lists(split)
    required = np.unique(np.concatenate(list(lists.values())))
    if not text_tables:
        raise DataError("no class-embedding kind requested (text is empty)")
    if legacy_text_order:
        log.warning(
            "legacy_text_order=True: class-embedding rows follow the sorted dict keys, not the class "
            "names, reproducing the upstream misalignment (reference §6.1)"
        )
    rows = [
        attach_embeddings(class_split, table, kind, path, required, legacy_text_order)
        for kind, table, path in text_tables
    ]
    meta = {
        "split": split,
        "audio_kind": family.audio.kind,
        "video_kind": family.video.kind,
        "text": ",".join(kind for kind, _, _ in text_tables),
        "text_files": ",".join(str(path) for _, _, path in text_tables),
        "legacy_text_order": str(bool(legacy_text_order)),
    }
    meta.update(metadata or {})
    return GZSLBenchmark(
        name=name,
        class_names=class_split.class_names,
        class_embeddings=np.concatenate(rows, axis=1),
        splits=splits,
        split_classes={k: v.copy() for k, v in lists.items()},
        audio_step=family.audio.step,
        video_step=family.video.step,
        metadata=meta,
    )


@BENCHMARKS.register("av_gzsl")
def load_gzsl_benchmark(
    root: str | Path | None,
    dataset: str,
    feature_dir: str,
    split: str = "cls",
    text: Sequence[str] = ("fasttext",),
    trust_pickle: bool = False,
    legacy_text_order: bool = False,
) -> GZSLBenchmark:
    """Load one dataset's GZSL benchmark from a released or converted tree.

    Args:
        root: data root (None -> ``$LOWSHOT_DATA_ROOT``).
        dataset: ``UCF`` | ``ActivityNet`` | ``VGGSound`` (case-insensitive).
        feature_dir: folder under ``<root>/<DS>/features/`` (e.g. ``cls_features_non_averaged``).
        split: class split, ``main`` or ``cls``.
        text: class-embedding kinds to concatenate, in order (``fasttext``, ``clip``, ``clap``).
        trust_pickle: allow the full unpickler for a released pickle (of the selected feature
            folder or text kinds) that holds more than dicts / lists / str / numpy arrays; the
            released files do not, and are read without it (no code runs).
        legacy_text_order: reproduce the upstream class-embedding misalignment (§6.1); off by default.

    Returns:
        The benchmark named ``<DS>/<split>``; features are memory-mapped for converted trees.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}'; expected one of {SPLITS}")
    spec = dataset_spec(dataset)
    ds_dir = dataset_dir(resolve_data_root(root), spec)
    class_split = load_class_split(ds_dir / "class-split", spec)
    feat_path = ds_dir / "features" / feature_dir
    source = open_feature_source(feat_path, class_split, trust_pickle)
    splits = read_split_features(source, class_split, split, feat_path)
    tables = load_text_tables(source.text_dir, text, spec, trust_pickle)
    audio_dtype, video_dtype = source.dtypes()
    meta = {
        "dataset": spec.name,
        "feature_dir": feature_dir,
        "layout": source.layout,
        "audio_dtype": audio_dtype,
        "video_dtype": video_dtype,
        "source": source.kind,
    }
    return build_benchmark(
        f"{spec.name}/{split}",
        class_split,
        split,
        splits,
        tables,
        source.family,
        legacy_text_order,
        meta,
    )
