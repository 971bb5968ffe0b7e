"""Facts about the three audio-visual GZSL datasets and their feature families.

Everything here is a constant taken from ``reference/av_benchmarks.md``: folder and file
short names (§2.4–§2.5), class and video counts (§2.3), and the feature families of the
released archives with their dimensions and step rates (§2.6–§2.7).
"""

from __future__ import annotations

from dataclasses import dataclass

from lowshot._registry import did_you_mean
from lowshot.errors import DataError

SPLITS = ("main", "cls")


@dataclass(frozen=True)
class AVDatasetSpec:
    """Names and sizes of one released dataset.

    Attributes:
        name: folder name under the data root (``UCF``, ``ActivityNet``, ``VGGSound``).
        fasttext_key: short name in fastText dict files (``word_embeddings_<key>_normed.npy``).
        clipclap_key: short name in ClipClap dict files (``activitynet``, not ``activity``).
        mapping_csv: ``original -> manual`` CSV in ``class-split/``.
        clip_csv: ``original -> clip_class_name`` CSV (UCF only) or None.
        n_classes: lines of ``all_class.txt``.
        stage_classes: split -> class list -> number of classes (§2.3).
        stage_videos: split -> stage folder -> number of videos (§2.3).
        csv_header: column order of the per-video ``stage_*.csv`` files (§2.1).
    """

    name: str
    fasttext_key: str
    clipclap_key: str
    mapping_csv: str
    clip_csv: str | None
    n_classes: int
    stage_classes: dict[str, dict[str, int]]
    stage_videos: dict[str, dict[str, int]]
    csv_header: tuple[str, ...]


def _table(
    s1: int, vs: int, vu: int, s2: int, ts: int, tu_main: int, tu_cls: int
) -> dict[str, dict[str, int]]:
    base = {
        "stage_1_train": s1,
        "stage_1_val_seen": vs,
        "stage_1_val_unseen": vu,
        "stage_2_train": s2,
        "stage_2_test_seen": ts,
    }
    return {
        "main": {**base, "stage_2_test_unseen": tu_main},
        "cls": {**base, "stage_2_test_unseen": tu_cls},
    }


DATASETS: dict[str, AVDatasetSpec] = {
    "UCF": AVDatasetSpec(
        name="UCF",
        fasttext_key="ucf",
        clipclap_key="ucf",
        mapping_csv="ucf_w2v_class_names.csv",
        clip_csv="ucf_clip_class_names.csv",
        n_classes=101,
        stage_classes=_table(30, 30, 12, 42, 42, 9, 6),
        stage_videos=_table(3174, 353, 1467, 4994, 555, 1267, 845),
        csv_header=("filename", "label", "label_code"),
    ),
    "ActivityNet": AVDatasetSpec(
        name="ActivityNet",
        fasttext_key="activity",
        clipclap_key="activitynet",
        mapping_csv="activitynet_w2v_class_names.csv",
        clip_csv=None,
        n_classes=200,
        stage_classes=_table(99, 99, 51, 150, 150, 50, 48),
        stage_videos=_table(9204, 1023, 4307, 14534, 1615, 4199, 4052),
        csv_header=("filename", "label_code", "label"),
    ),
    "VGGSound": AVDatasetSpec(
        name="VGGSound",
        fasttext_key="vggsound",
        clipclap_key="vggsound",
        mapping_csv="vggsound_w2v_class_names.csv",
        clip_csv=None,
        n_classes=309,
        stage_classes=_table(138, 138, 69, 207, 207, 69, 64),
        stage_videos=_table(70351, 7817, 3102, 81270, 9032, 3450, 3200),
        csv_header=(
            "youtube_id",
            "start_seconds",
            "label",
            "split",
            "filename",
            "label_code",
            "category",
        ),
    ),
}


def dataset_spec(name: str) -> AVDatasetSpec:
    """Spec of a dataset by folder name, case-insensitively (``ucf`` -> ``UCF``)."""
    for key, spec in DATASETS.items():
        if key.lower() == name.lower() or name.lower() in (spec.fasttext_key, spec.clipclap_key):
            return spec
    raise DataError(
        f"unknown dataset '{name}'{did_you_mean(name, list(DATASETS))}; known: {', '.join(DATASETS)}"
    )


@dataclass(frozen=True)
class ModalityFamily:
    """One modality of a feature family: extractor name, dimension, seconds per step."""

    kind: str
    dim: int
    step: float | None


@dataclass(frozen=True)
class FeatureFamily:
    """Audio + video feature family of a released feature folder."""

    audio: ModalityFamily
    video: ModalityFamily


#: (layout, split kind of the feature folder) -> family (reference §2.6, §2.7)
FAMILIES: dict[tuple[str, str], FeatureFamily] = {
    ("averaged", "main"): FeatureFamily(
        ModalityFamily("selavi", 512, None), ModalityFamily("selavi", 512, None)
    ),
    ("averaged", "cls"): FeatureFamily(
        ModalityFamily("vggish", 128, None), ModalityFamily("c3d", 4096, None)
    ),
    ("temporal", "main"): FeatureFamily(
        ModalityFamily("selavi", 512, 1.0), ModalityFamily("selavi", 512, 1.0)
    ),
    ("temporal", "cls"): FeatureFamily(
        ModalityFamily("vggish", 128, 0.96), ModalityFamily("c3d", 4096, 0.64)
    ),
    ("vector", "main"): FeatureFamily(
        ModalityFamily("clap", 1024, None), ModalityFamily("clip", 512, None)
    ),
    ("vector", "cls"): FeatureFamily(
        ModalityFamily("clap", 1024, None), ModalityFamily("clip", 512, None)
    ),
}


def feature_family(layout: str, feature_dir: str) -> FeatureFamily:
    """Family of a released folder: ``main*`` folders hold SeLaVi, the others VGGish/C3D
    (or CLAP/CLIP vectors for ClipClap's ``cls_features_non_averaged``)."""
    split_kind = "main" if feature_dir.lower().startswith("main") else "cls"
    return FAMILIES[(layout, split_kind)]


#: class-embedding kinds -> (dimension, file stem pattern, which key names the dict uses)
TEXT_KINDS: dict[str, tuple[int, str]] = {
    "fasttext": (300, "word_embeddings_{fasttext_key}_normed"),
    "clip": (512, "word_embeddings_{clipclap_key}_normed"),
    "clap": (1024, "wavcaps_word_embeddings_{clipclap_key}_normed"),
}


def text_file_stem(kind: str, spec: AVDatasetSpec) -> str:
    """File stem of a class-embedding dict, e.g. ``wavcaps_word_embeddings_activitynet_normed``."""
    if kind not in TEXT_KINDS:
        raise DataError(f"unknown text embedding '{kind}'{did_you_mean(kind, list(TEXT_KINDS))}")
    return TEXT_KINDS[kind][1].format(
        fasttext_key=spec.fasttext_key, clipclap_key=spec.clipclap_key
    )
