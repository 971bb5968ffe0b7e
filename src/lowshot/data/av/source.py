"""Where audio-visual benchmark features live, and how a feature folder is read by split.

Shared by the assembler (:mod:`lowshot.data.av.gzsl`) and the converter
(:mod:`lowshot.data.av.safe_format`): the dataset folder under the data root, what a
feature folder (released or converted) offers (:class:`FeatureSource`), and the check that
every class of a split's ``.txt`` lists has feature files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from lowshot.data.av.datasets import AVDatasetSpec, FeatureFamily
from lowshot.data.av.featureset import STAGES, FeatureSet
from lowshot.data.av.splits import ClassSplit
from lowshot.errors import DataError


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
    def text_dir(self) -> Path:
        """The folder of the class-embedding files."""

    def present_classes(self, stage: str) -> set[int]:
        """Class indices of ``stage`` that have feature files."""

    def read_stage(self, stage: str, keep: np.ndarray | None = None) -> FeatureSet:
        """All classes of ``stage`` (only those in ``keep`` if given) as one FeatureSet."""

    def dtypes(self) -> tuple[str, str]:
        """(audio, video) dtype names of the source features."""


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
