"""Walk a released feature folder and read it class file by class file.

A released feature folder ``<root>/<DS>/features/<feature_dir>/`` holds
``{audio,video}/<stage>/<ClassName>.{h5,pkl}`` (reference §2.6). The layout is detected by
content: ``.h5`` -> ``averaged``; ``.pkl`` with ``[T, D]`` items -> ``temporal``; ``.pkl``
with ``[D]`` items -> ``vector``. Class files are matched to classes by their stem,
case-insensitively; audio and video files of a class must list the same videos in the same
order. Dimensions must match the feature family of the folder (``main*`` = SeLaVi 512/512,
otherwise VGGish 128 / C3D 4096, or CLAP 1024 / CLIP 512 vectors).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowshot.data.av_datasets import FeatureFamily, feature_family
from lowshot.data.class_split import ClassIndex
from lowshot.data.featureset import FeatureSet, SequenceStore
from lowshot.data.h5_averaged import read_h5_class_file
from lowshot.data.pickles import read_pickle_class_file
from lowshot.errors import DataError

MODALITIES = ("audio", "video")
EXTENSIONS = (".h5", ".pkl")


@dataclass(frozen=True)
class ClassFiles:
    """The audio and video file of one class in one stage folder."""

    class_index: int
    audio: Path
    video: Path


@dataclass
class ClassFeatures:
    """Features of one class file pair.

    Attributes:
        class_index: global class index.
        audio: ``[N, D_a]`` array (averaged / vector) or list of ``[T_i, D_a]`` arrays.
        video: same for video.
        video_ids: ``[N]`` ids, identical for both modalities.
    """

    class_index: int
    audio: np.ndarray | list[np.ndarray]
    video: np.ndarray | list[np.ndarray]
    video_ids: list[str]


def _stage_files(folder: Path, classes: ClassIndex) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.suffix not in EXTENSIONS or path.name.startswith("."):
            continue
        idx = classes.find(path.stem)
        if idx is None:
            raise DataError(f"{path}: file stem '{path.stem}' is not a class of {classes.source}")
        if idx in out:
            raise DataError(f"{out[idx]} and {path} are files of the same class")
        out[idx] = path
    return out


def list_class_files(feature_root: Path, stage: str, classes: ClassIndex) -> list[ClassFiles]:
    """Audio/video file pairs of a stage folder, sorted by class index.

    Raises:
        DataError: a stem that is not a class, or a class with only one of the two files.
    """
    audio = _stage_files(feature_root / "audio" / stage, classes)
    video = _stage_files(feature_root / "video" / stage, classes)
    for one, other, name in ((audio, video, "video"), (video, audio, "audio")):
        missing = sorted(set(one) - set(other))
        if missing:
            raise DataError(
                f"{one[missing[0]]} has no matching {name} file in {feature_root / name / stage}"
            )
    return [ClassFiles(i, audio[i], video[i]) for i in sorted(audio)]


def detect_layout(path: Path, trust_pickle: bool) -> str:
    """``averaged`` for ``.h5``; ``temporal`` or ``vector`` from the items of a ``.pkl``."""
    if path.suffix == ".h5":
        return "averaged"
    return read_pickle_class_file(path, trust_pickle).kind


def _read_one(
    path: Path, layout: str, trust_pickle: bool
) -> tuple[np.ndarray | list[np.ndarray], list[str]]:
    if layout == "averaged":
        if path.suffix != ".h5":
            raise DataError(f"{path}: expected an .h5 file in an averaged (h5) feature folder")
        data, ids = read_h5_class_file(path)
        return data, ids  # type: ignore[return-value]
    if path.suffix != ".pkl":
        raise DataError(f"{path}: expected a .pkl file in a {layout} feature folder")
    content = read_pickle_class_file(path, trust_pickle)
    if content.kind != layout:
        raise DataError(f"{path}: holds {content.kind} features, but the folder is {layout}")
    return content.features, content.video_ids


def _check_values(
    path: Path, feats: np.ndarray | list[np.ndarray], expected_dim: int, what: str
) -> None:
    first = feats[0]
    dim = int(first.shape[-1])
    if dim != expected_dim:
        raise DataError(f"{path}: {dim}-d features, but {what} features are {expected_dim}-d")
    block = feats if isinstance(feats, np.ndarray) else np.concatenate(feats)
    if np.issubdtype(block.dtype, np.floating) and not np.isfinite(block).all():
        raise DataError(f"{path}: NaN or inf in the features")
    if not (np.issubdtype(block.dtype, np.floating) or np.issubdtype(block.dtype, np.integer)):
        raise DataError(f"{path}: non-numeric features of dtype {block.dtype}")


def read_class_pair(
    files: ClassFiles, layout: str, family: FeatureFamily, trust_pickle: bool
) -> ClassFeatures:
    """Read, validate and pair the audio and video file of one class.

    Raises:
        DataError: unreadable files, wrong dims, NaN/inf, or audio and video lists that disagree.
    """
    audio, a_ids = _read_one(files.audio, layout, trust_pickle)
    video, v_ids = _read_one(files.video, layout, trust_pickle)
    if a_ids != v_ids:
        bad = next(
            (i for i, (a, v) in enumerate(zip(a_ids, v_ids)) if a != v), min(len(a_ids), len(v_ids))
        )
        raise DataError(
            f"{files.audio} and {files.video} list different videos "
            f"({len(a_ids)} vs {len(v_ids)}; first difference at position {bad})"
        )
    _check_values(files.audio, audio, family.audio.dim, f"{family.audio.kind} audio")
    _check_values(files.video, video, family.video.dim, f"{family.video.kind} video")
    return ClassFeatures(files.class_index, audio, video, a_ids)


def dense(x: np.ndarray) -> np.ndarray:
    """Averaged / vector features are small: keep them as float32 ``[N, D]``."""
    return np.asarray(x, dtype=np.float32)


def _modality(
    parts: Sequence[np.ndarray | list[np.ndarray]], temporal: bool
) -> np.ndarray | SequenceStore:
    if not temporal:
        return dense(np.concatenate([np.asarray(p) for p in parts], axis=0))
    # one block per class file: no second copy of the whole stage
    stores = [SequenceStore.from_arrays(p) for p in parts]  # type: ignore[arg-type]
    return SequenceStore.concat(stores)


def stage_feature_set(classes: Sequence[ClassFeatures], temporal: bool) -> FeatureSet:
    """Assemble the class pairs of one stage (in the given order) into a FeatureSet."""
    if not classes:
        raise DataError("cannot build a feature set from no class files")
    labels = np.concatenate([np.full(len(c.video_ids), c.class_index, np.int64) for c in classes])
    ids = np.array([v for c in classes for v in c.video_ids], dtype=str)
    return FeatureSet(
        _modality([c.audio for c in classes], temporal),
        _modality([c.video for c in classes], temporal),
        labels,
        ids,
    )


class ReleasedFeatureDir:
    """A released feature folder, read lazily stage by stage.

    Args:
        path: ``<root>/<DS>/features/<feature_dir>``.
        classes: class index of the dataset.
        trust_pickle: allow reading ``.pkl`` files.
    """

    def __init__(self, path: Path, classes: ClassIndex, trust_pickle: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"missing feature folder {self.path}")
        self.classes = classes
        self.trust_pickle = trust_pickle
        first = next(self._all_files(), None)
        if first is None:
            raise DataError(f"{self.path}: no .h5 or .pkl feature files under audio/<stage>/")
        self.layout = detect_layout(first, trust_pickle)
        self.family = feature_family(self.layout, self.path.name)

    def _all_files(self) -> Iterator[Path]:
        root = self.path / "audio"
        if root.is_dir():
            for stage in sorted(root.iterdir()):
                if stage.is_dir():
                    yield from (p for p in sorted(stage.iterdir()) if p.suffix in EXTENSIONS)

    @property
    def text_dir(self) -> Path:
        return self.path / "text"

    def class_files(self, stage: str) -> list[ClassFiles]:
        return list_class_files(self.path, stage, self.classes)

    def iter_classes(self, stage: str, keep: np.ndarray | None = None) -> Iterator[ClassFeatures]:
        """Read the class pairs of ``stage`` one at a time (only classes in ``keep`` if given)."""
        wanted = None if keep is None else {int(c) for c in keep}
        for files in self.class_files(stage):
            if wanted is None or files.class_index in wanted:
                yield read_class_pair(files, self.layout, self.family, self.trust_pickle)

    def read_stage(self, stage: str, keep: np.ndarray | None = None) -> FeatureSet:
        """All (kept) classes of ``stage`` as one FeatureSet."""
        parts = list(self.iter_classes(stage, keep))
        if not parts:
            raise DataError(f"{self.path}: no feature files for stage '{stage}'")
        return stage_feature_set(parts, self.layout == "temporal")
