"""Bad input: every case gives a DataError that names the file/key and the problem."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from lowshot.data.av.embeddings import read_embedding_dict, write_embedding_dict
from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.data.av.h5 import read_h5_class_file, write_h5_class_file
from lowshot.data.av.pickles import read_pickle_class_file
from lowshot.errors import DataError

H5 = "main_averaged"
PKL = "clipclap"


def _load(root: Path, preset: str, **kw):
    fdir = "main_features" if preset == H5 else "cls_features_non_averaged"
    text = ("clip", "clap") if preset == PKL else ("fasttext",)
    kw.setdefault("trust_pickle", True)
    return load_gzsl_benchmark(root, "UCF", fdir, kw.pop("split", "cls"), text=text, **kw)


def _files(root: Path, preset: str, modality: str, stage: str = "stage_1_train") -> list[Path]:
    fdir = "main_features" if preset == H5 else "cls_features_non_averaged"
    return sorted((root / "UCF" / "features" / fdir / modality / stage).iterdir())


def test_missing_partner_file(tree_copy) -> None:
    root = tree_copy(H5)
    victim = _files(root, H5, "video")[0]
    victim.unlink()
    with pytest.raises(DataError, match=rf"{victim.stem}\.h5 has no matching video file"):
        _load(root, H5)


def test_listed_class_without_files(tree_copy) -> None:
    root = tree_copy(H5)
    a, v = _files(root, H5, "audio")[0], _files(root, H5, "video")[0]
    a.unlink()
    v.unlink()
    with pytest.raises(
        DataError, match=rf"class '{a.stem}' of cls_split/stage_1_train.txt has no feature files"
    ):
        _load(root, H5)


def test_missing_feature_folder_and_dataset(tree_copy) -> None:
    root = tree_copy(H5)
    with pytest.raises(DataError, match="missing feature folder"):
        load_gzsl_benchmark(root, "UCF", "cls_features", "cls", trust_pickle=True)
    with pytest.raises(DataError, match="no VGGSound/ folder"):
        load_gzsl_benchmark(root, "VGGSound", "main_features", "cls", trust_pickle=True)


def test_truncated_h5(tree_copy) -> None:
    root = tree_copy(H5)
    victim = _files(root, H5, "audio")[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=rf"{victim.name}: not a readable HDF5"):
        _load(root, H5)


def test_h5_without_data_key(tmp_path: Path) -> None:
    path = tmp_path / "X.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("video_urls", data=np.array([b"a"], dtype="S80"))
    with pytest.raises(DataError, match="no 'data' dataset"):
        read_h5_class_file(path)


def test_garbage_pickle(tree_copy) -> None:
    root = tree_copy(PKL)
    victim = _files(root, PKL, "video")[2]
    victim.write_bytes(b"\x80\x04this is not a pickle at all")
    with pytest.raises(DataError, match=rf"{victim.name}: not a readable pickle"):
        _load(root, PKL)


def test_pickle_structure_errors(tmp_path: Path) -> None:
    path = tmp_path / "C.pkl"
    path.write_bytes(pickle.dumps({"features": [np.zeros(3)], "names": []}))
    with pytest.raises(DataError, match="expected a dict with 'features' and 'video_names'"):
        read_pickle_class_file(path, trust_pickle=True)
    path.write_bytes(
        pickle.dumps({"features": [np.zeros(3), np.zeros(4)], "video_names": [b"a", b"b"]})
    )
    with pytest.raises(DataError, match="disagree on the dimension"):
        read_pickle_class_file(path, trust_pickle=True)
    path.write_bytes(pickle.dumps({"features": [np.zeros(3)], "video_names": [b"a", b"b"]}))
    with pytest.raises(DataError, match="1 feature items but 2 video names"):
        read_pickle_class_file(path, trust_pickle=True)


def test_audio_and_video_lists_disagree(tree_copy) -> None:
    root = tree_copy(H5)
    victim = next(p for p in _files(root, H5, "video") if read_h5_class_file(p)[0].shape[0] > 1)
    data, ids = read_h5_class_file(victim)
    write_h5_class_file(victim, data[::-1], ids[::-1])
    audio = victim.parents[2] / "audio" / "stage_1_train" / victim.name
    with pytest.raises(DataError, match="list different videos") as err:
        _load(root, H5)
    assert str(audio) in str(err.value) and str(victim) in str(err.value)


def test_nan_features(tree_copy) -> None:
    root = tree_copy(H5)
    victim = _files(root, H5, "audio", "stage_2_test_seen")[0]
    data, ids = read_h5_class_file(victim)
    data[0, 3] = np.nan
    write_h5_class_file(victim, data, ids)
    with pytest.raises(DataError, match=rf"{victim.name}: NaN or inf"):
        _load(root, H5)


def test_wrong_feature_dimension(tree_copy) -> None:
    root = tree_copy(H5)
    victim = _files(root, H5, "video", "stage_1_val_seen")[0]
    data, ids = read_h5_class_file(victim)
    write_h5_class_file(victim, data[:, :100], ids)
    with pytest.raises(
        DataError, match=rf"{victim.name}: 100-d features, but selavi video features are 512-d"
    ):
        _load(root, H5)


def test_class_without_embedding(tree_copy) -> None:
    root = tree_copy(H5)
    text = root / "UCF" / "features" / "main_features" / "text" / "word_embeddings_ucf_normed.npy"
    table = read_embedding_dict(text, trust_pickle=True)
    b = _load(root, H5)
    c = int(b.split_classes["stage_2_test_unseen"][0])
    import csv

    with open(root / "UCF" / "class-split" / "ucf_w2v_class_names.csv", newline="") as fh:
        manual = {r["original"]: r["manual"] for r in csv.DictReader(fh)}[b.class_names[c]]
    del table[manual]
    write_embedding_dict(text, table)
    with pytest.raises(
        DataError, match=rf"class '{b.class_names[c]}' has no fasttext embedding in .*{text.name}"
    ):
        _load(root, H5)


def test_empty_split(tree_copy) -> None:
    root = tree_copy(H5)
    (root / "UCF" / "class-split" / "cls_split" / "stage_1_val_unseen.txt").write_text("\n")
    with pytest.raises(DataError, match="stage_1_val_unseen.txt lists no classes"):
        _load(root, H5)


def test_unknown_class_in_list_and_unknown_file_stem(tree_copy) -> None:
    root = tree_copy(H5)
    stage_txt = root / "UCF" / "class-split" / "main_split" / "stage_1_train.txt"
    original = stage_txt.read_text()
    stage_txt.write_text(original + "NoSuchClass\n")
    with pytest.raises(DataError, match="stage_1_train.txt: 'NoSuchClass' is not a class"):
        _load(root, H5)
    stage_txt.write_text(original)
    src = _files(root, H5, "audio")[0]
    (src.parent / "NotAClass.h5").write_bytes(src.read_bytes())
    with pytest.raises(DataError, match="NotAClass.h5: file stem 'NotAClass' is not a class"):
        _load(root, H5)


def test_fasttext_asked_on_a_clipclap_tree(synth_tree) -> None:
    with pytest.raises(
        DataError, match=r"512-d vectors, but fasttext embeddings are 300-d \(a ClipClap CLIP dict"
    ):
        load_gzsl_benchmark(
            synth_tree(PKL), "UCF", "cls_features_non_averaged", "cls", trust_pickle=True
        )


def test_unknown_split_and_text_kind(synth_tree) -> None:
    with pytest.raises(DataError, match="unknown split"):
        _load(synth_tree(PKL), PKL, split="zsl")
    with pytest.raises(DataError, match="unknown text embedding 'glove'"):
        load_gzsl_benchmark(
            synth_tree(PKL),
            "UCF",
            "cls_features_non_averaged",
            "cls",
            text=("glove",),
            trust_pickle=True,
        )


def test_h5_video_urls_as_vlen_strings_or_bytes(tmp_path: Path) -> None:
    path = tmp_path / "Archery.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("data", data=np.ones((2, 4), np.float32))
        fh.create_dataset(
            "video_urls", data=["v_Archery_g01_c01", "v_Archery_g01_c02"], dtype=h5py.string_dtype()
        )
    data, ids = read_h5_class_file(path)
    assert ids == ["v_Archery_g01_c01", "v_Archery_g01_c02"] and data.shape == (2, 4)
    write_h5_class_file(path, data, ids)  # the archive's fixed S80 bytes
    assert read_h5_class_file(path)[1] == ids
    with h5py.File(path, "r") as fh:
        assert fh["video_urls"].dtype == np.dtype("S80")
