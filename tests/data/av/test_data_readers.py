"""Readers: class-split trees (real files), embedding attachment, the three feature layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from data_testing import feature_dir, text_of

from lowshot.data.av.datasets import DATASETS
from lowshot.data.av.embeddings import attach_embeddings, legacy_misaligned, read_embedding_dict
from lowshot.data.av.featureset import STAGES, SequenceStore
from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.data.av.splits import ClassIndex, load_class_split
from lowshot.data.av.synth import write_synthetic
from lowshot.errors import DataError
from lowshot.utils.paths import resolve_data_root

#: reference §6.1: classes wrong under the legacy order (all, s1 train, s1 val unseen, s2 test unseen main / cls)
LEGACY_WRONG = {
    "UCF": (79, 23, 8, 5, 4),
    "ActivityNet": (8, 5, 2, 1, 1),
    "VGGSound": (205, 84, 51, 42, 38),
}


def _real(shared_data: Path, name: str):
    spec = DATASETS[name]
    cs = load_class_split(shared_data / "av_gzsl" / name / "class-split", spec)
    emb = (
        shared_data
        / "av_gzsl"
        / "class_embeddings"
        / f"word_embeddings_{spec.fasttext_key}_normed.npy"
    )
    return spec, cs, emb


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_real_class_split_counts_label_codes_and_embeddings(shared_data: Path, name: str) -> None:
    spec, cs, emb = _real(shared_data, name)
    assert len(cs.class_names) == spec.n_classes
    for split in ("main", "cls"):
        assert {k: len(v) for k, v in cs.lists[split].items()} == spec.stage_classes[split]
    # label_code = position in the code-point sort (checked on every CSV row)
    for split in ("main", "cls"):
        for path in sorted((cs.root / f"{split}_split").glob("*.csv")):
            with open(path, newline="") as fh:
                for row in csv.DictReader(fh):
                    assert cs.classes.index(row["label"], path) == int(row["label_code"]), (
                        path,
                        row,
                    )
    table = read_embedding_dict(emb, trust_pickle=True)
    for lists in cs.lists.values():
        required = np.unique(np.concatenate(list(lists.values())))
        rows = attach_embeddings(cs, table, "fasttext", emb, required)
        for c in required:  # by name, through the manual column
            np.testing.assert_array_equal(rows[c], table[cs.manual[c]])
    wrong = legacy_misaligned(cs, table, "fasttext")
    lists = cs.lists["main"]
    got = (
        int(wrong.sum()),
        int(wrong[lists["stage_1_train"]].sum()),
        int(wrong[lists["stage_1_val_unseen"]].sum()),
        int(wrong[lists["stage_2_test_unseen"]].sum()),
        int(wrong[cs.lists["cls"]["stage_2_test_unseen"]].sum()),
    )
    assert got == LEGACY_WRONG[name]


@pytest.mark.data
def test_ucf_code_point_order_and_case_insensitive_names(shared_data: Path) -> None:
    _, cs, _ = _real(shared_data, "UCF")
    assert cs.classes.index("HammerThrow", "t") < cs.classes.index("Hammering", "t")
    assert cs.classes.find("HandStandPushups") == cs.classes.find("HandstandPushups") is not None
    assert cs.clip is not None and cs.clip_file is not None


def test_class_index_rejects_case_duplicates_and_unknown_names() -> None:
    with pytest.raises(DataError, match="differ only by case"):
        ClassIndex(["Typing", "typing"])
    idx = ClassIndex(["b", "A", "a_"])
    assert idx.names == ("A", "a_", "b")
    with pytest.raises(DataError, match="'zz' is not a class"):
        idx.index("zz", "somefile.txt")


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_tree_shaped_like_the_shared_data_loads_for_both_splits(
    shared_data: Path, tmp_path: Path, name: str
) -> None:
    spec, cs, emb = _real(shared_data, name)
    path = write_synthetic(
        tmp_path,
        preset="main_temporal",
        dataset=name,
        seed=0,
        size=0.001,
        class_split=cs.root,
        embeddings=emb,
        trust_pickle=True,
    )
    # class-split files are copied byte-exact, the real fastText dict is written unchanged
    assert (tmp_path / name / "class-split" / "all_class.txt").read_bytes() == (
        cs.root / "all_class.txt"
    ).read_bytes()
    table = read_embedding_dict(emb, trust_pickle=True)
    for split in ("main", "cls"):
        b = load_gzsl_benchmark(tmp_path, name, path.name, split, trust_pickle=True)
        assert {k: len(v) for k, v in b.split_classes.items()} == spec.stage_classes[split]
        for stage in STAGES:
            assert set(np.unique(b.splits[stage].labels)) == set(b.split_classes[stage])
        for c in np.unique(np.concatenate(list(b.split_classes.values()))):
            np.testing.assert_array_equal(b.class_embeddings[c], table[cs.manual[c]])
    legacy = load_gzsl_benchmark(
        tmp_path, name, path.name, "cls", trust_pickle=True, legacy_text_order=True
    )
    wrong = ~np.all(legacy.class_embeddings == b.class_embeddings, axis=1)
    assert int(wrong.sum()) == LEGACY_WRONG[name][0]
    assert int(wrong[b.split_classes["stage_2_test_unseen"]].sum()) == LEGACY_WRONG[name][4]


@pytest.mark.parametrize(
    ("preset", "layout", "dims", "steps", "kinds"),
    [
        ("main_averaged", "averaged", (512, 512), (None, None), ("selavi", "selavi")),
        ("cls_averaged", "averaged", (128, 4096), (None, None), ("vggish", "c3d")),
        ("main_temporal", "temporal", (512, 512), (1.0, 1.0), ("selavi", "selavi")),
        ("cls_temporal", "temporal", (128, 4096), (0.96, 0.64), ("vggish", "c3d")),
        ("clipclap", "vector", (1024, 512), (None, None), ("clap", "clip")),
    ],
)
def test_layouts_are_detected_with_their_family(
    synth_tree, preset, layout, dims, steps, kinds
) -> None:
    b = load_gzsl_benchmark(
        synth_tree(preset),
        "ucf",
        feature_dir(preset),
        "cls",
        text=text_of(preset),
        trust_pickle=True,
    )
    assert b.metadata["layout"] == layout
    assert b.splits["stage_1_train"].dims == dims
    assert (b.audio_step, b.video_step) == steps
    assert (b.metadata["audio_kind"], b.metadata["video_kind"]) == kinds
    assert b.splits["stage_1_train"].temporal == (layout == "temporal")
    if layout == "temporal":
        assert isinstance(b.splits["stage_2_test_seen"].video, SequenceStore)
        assert b.metadata["audio_dtype"] == ("uint8" if preset == "cls_temporal" else "float32")
    else:
        assert b.splits["stage_1_train"].audio.dtype == np.float32


def test_cls_split_filters_the_dropped_classes(synth_tree) -> None:
    root = synth_tree("clipclap")
    main = load_gzsl_benchmark(
        root, "UCF", "cls_features_non_averaged", "main", text=("clip", "clap"), trust_pickle=True
    )
    cls = load_gzsl_benchmark(
        root, "UCF", "cls_features_non_averaged", "cls", text=("clip", "clap"), trust_pickle=True
    )
    assert (
        len(main.split_classes["stage_2_test_unseen"]) == 9
        and len(cls.split_classes["stage_2_test_unseen"]) == 6
    )
    assert set(np.unique(cls.splits["stage_2_test_unseen"].labels)) == set(
        cls.split_classes["stage_2_test_unseen"]
    )
    assert len(cls.splits["stage_2_test_unseen"]) < len(main.splits["stage_2_test_unseen"])
    assert cls.class_embeddings.shape == (101, 1536)
    assert len(cls.splits["stage_1_train"]) == len(main.splits["stage_1_train"])


def test_text_kinds_concatenate_in_the_requested_order(synth_tree) -> None:
    root = synth_tree("clipclap")
    a = load_gzsl_benchmark(
        root, "UCF", "cls_features_non_averaged", "cls", text=("clip", "clap"), trust_pickle=True
    )
    b = load_gzsl_benchmark(
        root, "UCF", "cls_features_non_averaged", "cls", text=("clap",), trust_pickle=True
    )
    np.testing.assert_array_equal(a.class_embeddings[:, 512:], b.class_embeddings)


def test_data_root_from_argument_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOWSHOT_DATA_ROOT", raising=False)
    with pytest.raises(DataError, match="LOWSHOT_DATA_ROOT"):
        resolve_data_root(None)
    with pytest.raises(DataError, match="not a folder"):
        resolve_data_root(tmp_path / "nope")
    monkeypatch.setenv("LOWSHOT_DATA_ROOT", str(tmp_path))
    assert resolve_data_root(None) == tmp_path
    assert resolve_data_root(str(tmp_path)) == tmp_path


def test_load_with_env_root(synth_tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOWSHOT_DATA_ROOT", str(synth_tree("clipclap")))
    b = load_gzsl_benchmark(
        None, "UCF", "cls_features_non_averaged", "cls", text=("clip", "clap"), trust_pickle=True
    )
    assert b.name == "UCF/cls"
