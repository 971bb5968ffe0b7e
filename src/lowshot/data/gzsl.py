"""Assemble a :class:`~lowshot.data.featureset.GZSLBenchmark` from a data root.

Users unzip the released archives unchanged under one data root (argument, or the
``LOWSHOT_DATA_ROOT`` environment variable)::

    <root>/<DS>/class-split/...                      (all_class.txt, name CSVs, {main,cls}_split/)
    <root>/<DS>/features/<feature_dir>/{audio,video}/<stage>/<Class>.{h5,pkl}
    <root>/<DS>/features/<feature_dir>/text/*_normed.npy

:func:`load_gzsl_benchmark` reads such a released tree, or the pickle-free converted tree
written by ``lowshot data convert`` (recommended; memory-mapped, see
:mod:`lowshot.data.safe_format`), and returns the same benchmark for both: stage splits
filtered by the split's ``.txt`` class lists, class-label embeddings attached by class name
and concatenated in the order of ``text``, step rates and feature kinds in the metadata.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from lowshot._registry import BENCHMARKS
from lowshot.data.av_datasets import SPLITS, AVDatasetSpec, FeatureFamily, dataset_spec
from lowshot.data.class_split import ClassSplit, load_class_split
from lowshot.data.embeddings import (
    EmbeddingDict,
    attach_embeddings,
    find_embedding_file,
    read_embedding_dict,
)
from lowshot.data.feature_tree import ReleasedFeatureDir, stage_feature_set
from lowshot.data.featureset import STAGES, FeatureSet, GZSLBenchmark
from lowshot.errors import DataError

log = logging.getLogger(__name__)

ENV_DATA_ROOT = "LOWSHOT_DATA_ROOT"


def resolve_data_root(root: str | Path | None) -> Path:
    """The data root: ``root`` if given, else ``$LOWSHOT_DATA_ROOT``.

    Raises:
        DataError: neither is set, or the folder does not exist.
    """
    value = str(root) if root is not None else os.environ.get(ENV_DATA_ROOT)
    if not value:
        raise DataError(
            "no data root given: pass it (lowshot reproduce: --data-root DIR; lowshot data: the "
            f"ROOT argument; config: data.root) or set {ENV_DATA_ROOT} to the folder where you unzipped "
            "the released archives (it holds UCF/, ActivityNet/, VGGSound/)"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        source = "argument" if root is not None else ENV_DATA_ROOT
        raise DataError(f"data root {path} (from {source}) is not a folder")
    return path


def dataset_dir(root: Path, spec: AVDatasetSpec) -> Path:
    """``<root>/<DS>`` (folder name matched case-insensitively)."""
    path = root / spec.name
    if path.is_dir():
        return path
    for child in root.iterdir() if root.is_dir() else []:
        if child.is_dir() and child.name.lower() == spec.name.lower():
            return child
    raise DataError(f"no {spec.name}/ folder under the data root {root}")


class FeatureSource(Protocol):
    """What the assembler needs from a feature folder (released or converted)."""

    layout: str
    family: FeatureFamily
    kind: str  # "released" | "converted"

    @property
    def text_dir(self) -> Path: ...

    def present_classes(self, stage: str) -> set[int]: ...

    def read_stage(self, stage: str, keep: np.ndarray | None = None) -> FeatureSet: ...

    def dtypes(self) -> tuple[str, str]: ...


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
    from lowshot.data.safe_format import ConvertedFeatureDir, is_converted

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


def check_split_classes(
    present_classes: Callable[[str], set[int]], class_split: ClassSplit, split: str, where: Path
) -> dict[str, np.ndarray]:
    """The split's class list per stage, after checking every listed class has feature files.

    Args:
        present_classes: stage -> class indices with feature files.
        class_split: class lists.
        split: ``main`` or ``cls``.
        where: the feature folder (for messages).

    Raises:
        DataError: an empty class list, or a listed class without feature files.
    """
    lists = class_split.split_lists(split)
    for stage in STAGES:
        wanted = lists[stage]
        if len(wanted) == 0:
            raise DataError(
                f"{class_split.root}/{split}_split/{stage}.txt lists no classes (empty split)"
            )
        present = present_classes(stage)
        missing = [int(c) for c in wanted if int(c) not in present]
        if missing:
            raise DataError(
                f"class '{class_split.class_names[missing[0]]}' of {split}_split/{stage}.txt has no "
                f"feature files in {where} (stage {stage})"
            )
    return lists


def read_split_features(
    source: FeatureSource, class_split: ClassSplit, split: str, where: Path
) -> dict[str, FeatureSet]:
    """Stage FeatureSets filtered by the split's class lists.

    Raises:
        DataError: a listed class without feature files, or an empty stage.
    """
    lists = check_split_classes(source.present_classes, class_split, split, where)
    return {stage: source.read_stage(stage, lists[stage]) for stage in STAGES}


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
