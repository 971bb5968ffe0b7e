"""Safe converted format: round trip for the three layouts, memmap, atomicity, no-op re-run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_testing import assert_same_benchmark, feature_dir, text_of

from lowshot.data.av.featureset import SequenceStore
from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.data.av.h5 import read_h5_class_file, write_h5_class_file
from lowshot.data.av.safe_format import MARKER, convert_feature_dir
from lowshot.errors import DataError


@pytest.mark.parametrize("preset", ["main_averaged", "cls_temporal", "clipclap"])
def test_round_trip_gives_the_same_benchmark(synth_tree, tmp_path: Path, preset: str) -> None:
    src = synth_tree(preset)
    fdir = feature_dir(preset)
    out = convert_feature_dir(src, "UCF", fdir, tmp_path, trust_pickle=True, split="cls")
    assert not list(out.rglob("*.pkl")) and not list(out.rglob("*.h5"))
    for p in out.rglob("*.npy"):  # no pickle anywhere: every .npy loads without allow_pickle
        np.load(p, allow_pickle=False, mmap_mode="r")
    for split in ("cls", "main"):
        released = load_gzsl_benchmark(
            src, "UCF", fdir, split, text=text_of(preset), trust_pickle=True
        )
        converted = load_gzsl_benchmark(
            tmp_path, "UCF", fdir, split, text=text_of(preset)
        )  # no trust needed
        assert_same_benchmark(released, converted)
        assert converted.metadata["source"] == "converted"
    fs = converted.splits["stage_1_train"]
    if preset == "cls_temporal":
        assert isinstance(fs.audio, SequenceStore)
        assert all(isinstance(b, np.memmap) for b in fs.audio.blocks + fs.video.blocks)
        assert fs.audio.dtype == np.uint8
        # the cls test-unseen folder keeps dropped classes; filtering keeps the memmap blocks
        assert isinstance(converted.splits["stage_2_test_unseen"].video.blocks[0], np.memmap)
    else:
        assert isinstance(fs.audio, np.memmap) and isinstance(fs.video, np.memmap)
    # the converted class-split copy is complete
    assert (tmp_path / "UCF" / "class-split" / "main_split" / "stage_2_test_unseen.csv").is_file()


def test_rerun_is_a_noop(synth_tree, tmp_path: Path) -> None:
    src = synth_tree("clipclap")
    out = convert_feature_dir(src, "UCF", "cls_features_non_averaged", tmp_path, trust_pickle=True)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert (
        convert_feature_dir(src, "UCF", "cls_features_non_averaged", tmp_path) == out
    )  # not even trust needed
    assert stamp == {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    meta = json.loads((out / MARKER).read_text())
    assert meta["layout"] == "vector" and meta["stages"]["stage_1_train"]["videos"] > 0


def test_failure_midway_leaves_no_output(tree_copy, tmp_path: Path) -> None:
    src = tree_copy("main_averaged")
    victim = sorted(
        (src / "UCF" / "features" / "main_features" / "video" / "stage_2_test_unseen").iterdir()
    )[-1]
    data, ids = read_h5_class_file(victim)
    data[-1, -1] = np.inf
    write_h5_class_file(victim, data, ids)
    out_root = tmp_path / "out"
    with pytest.raises(DataError, match="NaN or inf"):
        convert_feature_dir(src, "UCF", "main_features", out_root, trust_pickle=True)
    features = out_root / "UCF" / "features"
    assert not (features / "main_features").exists()
    assert not [p for p in features.iterdir() if p.name.startswith(".")]  # temp folder removed


def test_existing_incomplete_output_is_refused(synth_tree, tmp_path: Path) -> None:
    (tmp_path / "UCF" / "features" / "main_features").mkdir(parents=True)
    with pytest.raises(DataError, match="not a completed conversion"):
        convert_feature_dir(
            synth_tree("main_averaged"), "UCF", "main_features", tmp_path, trust_pickle=True
        )
