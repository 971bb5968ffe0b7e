"""Walk a released feature folder and read it class file by class file.

A released feature folder ``<root>/<DS>/features/<feature_dir>/`` holds
``{audio,video}/<stage>/<ClassName>.{h5,pkl}`` (reference §2.6). The layout is detected
without opening a file it does not read: any ``.h5`` -> ``averaged`` (``.pkl`` files are then
ignored, never unpickled); else the first ``.pkl``'s items: ``[T, D]`` -> ``temporal``,
``[D]`` -> ``vector``. Class files are matched to classes by their stem,
case-insensitively; audio and video files of a class must list the same videos in the same
order. Dimensions must match the feature family of the folder (``main*`` = SeLaVi 512/512,
otherwise VGGish 128 / C3D 4096, or CLAP 1024 / CLIP 512 vectors).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowshot.data.av.datasets import FeatureFamily, feature_family
from lowshot.data.av.featureset import FeatureSet, SequenceStore
from lowshot.data.av.h5 import read_h5_class_file
from lowshot.data.av.pickles import read_pickle_class_file
from lowshot.data.av.splits import ClassIndex
from lowshot.errors import DataError

log = logging.getLogger(__name__)

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


def _stage_files(
    folder: Path, classes: ClassIndex, suffix: str
) -> tuple[dict[int, Path], list[str]]:
    """class index -> the ``suffix`` file of that class in ``folder``; problem lines."""
    out: dict[int, Path] = {}
    problems: list[str] = []
    if not folder.is_dir():
        return out, problems
    for path in sorted(folder.iterdir()):
        if path.suffix != suffix or path.name.startswith("."):
            continue
        idx = classes.find(path.stem)
        if idx is None:
            problems.append(f"{path}: file stem '{path.stem}' is not a class of {classes.source}")
        elif idx in out:
            problems.append(f"{out[idx]} and {path} are files of the same class")
        else:
            out[idx] = path
    return out, problems


def match_class_files(
    feature_root: Path, stage: str, classes: ClassIndex, suffix: str
) -> tuple[list[ClassFiles], list[str]]:
    """Audio/video file pairs of a stage folder (sorted by class index) and problem lines
    (stems that are not classes, two files of a class, a class with only one of the two files)."""
    audio, problems = _stage_files(feature_root / "audio" / stage, classes, suffix)
    video, more = _stage_files(feature_root / "video" / stage, classes, suffix)
    problems += more
    for one, other, name in ((audio, video, "video"), (video, audio, "audio")):
        problems += [
            f"{one[i]} has no matching {name} file in {feature_root / name / stage}"
            for i in sorted(set(one) - set(other))
        ]
    return [ClassFiles(i, audio[i], video[i]) for i in sorted(set(audio) & set(video))], problems


def list_class_files(
    feature_root: Path, stage: str, classes: ClassIndex, suffix: str
) -> list[ClassFiles]:
    """Audio/video file pairs of a stage folder, sorted by class index.

    Raises:
        DataError: the first problem :func:`match_class_files` finds.
    """
    pairs, problems = match_class_files(feature_root, stage, classes, suffix)
    if problems:
        raise DataError(problems[0])
    return pairs


def detect_layout(feature_root: Path, classes: ClassIndex, trust_pickle: bool) -> str:
    """Layout of a released feature folder, opening no file the layout does not read.

    ``.h5`` class files under ``audio/<stage>/`` -> ``averaged`` (``.pkl`` files are then
    ignored, never opened); otherwise the first ``.pkl`` class file is read: ``temporal`` or
    ``vector``. Files whose stem is not a class are never opened here.
    """
    files = [p for p in _audio_files(feature_root) if classes.find(p.stem) is not None]
    h5 = [p for p in files if p.suffix == ".h5"]
    pkl = [p for p in files if p.suffix == ".pkl"]
    if h5:
        if pkl:
            log.warning(
                "%s: %d .pkl file(s) in an h5 (averaged) feature folder are ignored, e.g. %s",
                feature_root,
                len(pkl),
                pkl[0],
            )
        return "averaged"
    if not pkl:
        raise DataError(f"{feature_root}: no .h5 or .pkl class files under audio/<stage>/")
    return read_pickle_class_file(pkl[0], trust_pickle).kind


def _audio_files(feature_root: Path) -> Iterator[Path]:
    root = feature_root / "audio"
    if root.is_dir():
        for stage in sorted(root.iterdir()):
            if stage.is_dir():
                yield from (
                    p
                    for p in sorted(stage.iterdir())
                    if p.suffix in EXTENSIONS and not p.name.startswith(".")
                )


def read_class_file(
    path: Path, layout: str, trust_pickle: bool
) -> tuple[np.ndarray | list[np.ndarray], list[str]]:
    """One class file of a ``layout`` folder: (``[N, D]`` array or ``[T_i, D]`` list, ``[N]`` ids)."""
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


def feature_dim(feats: np.ndarray | list[np.ndarray]) -> int:
    """Last-axis size of ``[N, D]`` or of the first ``[T, D]`` item."""
    return int(feats[0].shape[-1])


def count_nonfinite(feats: np.ndarray | list[np.ndarray]) -> int:
    """Number of NaN / inf values (0 for integer features)."""
    blocks = [feats] if isinstance(feats, np.ndarray) else feats
    return sum(
        int(np.size(b) - np.count_nonzero(np.isfinite(b)))
        for b in blocks
        if np.issubdtype(b.dtype, np.floating)
    )


def _check_values(
    path: Path, feats: np.ndarray | list[np.ndarray], expected_dim: int, what: str
) -> None:
    dim = feature_dim(feats)
    if dim != expected_dim:
        raise DataError(f"{path}: {dim}-d features, but {what} features are {expected_dim}-d")
    dtype = feats.dtype if isinstance(feats, np.ndarray) else feats[0].dtype
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise DataError(f"{path}: non-numeric features of dtype {dtype}")
    bad = count_nonfinite(feats)
    if bad:
        raise DataError(f"{path}: NaN or inf in the features ({bad} value(s))")


def different_videos(a_ids: list[str], v_ids: list[str]) -> str | None:
    """Why two id lists differ (counts, first differing position), or None if equal."""
    if a_ids == v_ids:
        return None
    bad = next(
        (i for i, (a, v) in enumerate(zip(a_ids, v_ids)) if a != v), min(len(a_ids), len(v_ids))
    )
    return f"{len(a_ids)} vs {len(v_ids)} videos; first difference at position {bad}"


def read_class_pair(
    files: ClassFiles, layout: str, family: FeatureFamily, trust_pickle: bool
) -> ClassFeatures:
    """Read, validate and pair the audio and video file of one class.

    Raises:
        DataError: unreadable files, wrong dims, NaN/inf, or audio and video lists that disagree.
    """
    audio, a_ids = read_class_file(files.audio, layout, trust_pickle)
    video, v_ids = read_class_file(files.video, layout, trust_pickle)
    why = different_videos(a_ids, v_ids)
    if why:
        raise DataError(f"{files.audio} and {files.video} list different videos ({why})")
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
        trust_pickle: allow the full unpickler for a ``.pkl`` the restricted one refuses.
    """

    def __init__(self, path: Path, classes: ClassIndex, trust_pickle: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"missing feature folder {self.path}")
        self.classes = classes
        self.trust_pickle = trust_pickle
        self.layout = detect_layout(self.path, classes, trust_pickle)
        self.suffix = ".h5" if self.layout == "averaged" else ".pkl"
        self.family = feature_family(self.layout, self.path.name)

    @property
    def text_dir(self) -> Path:
        """The class-embedding folder, ``<path>/text``."""
        return self.path / "text"

    def class_files(self, stage: str) -> list[ClassFiles]:
        """The audio/video file pairs of ``stage``, sorted by class index.

        Raises:
            DataError: the first problem :func:`match_class_files` finds.
        """
        return list_class_files(self.path, stage, self.classes, self.suffix)

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
