"""GFSL benchmark data: Table 4.1 partition counts, deterministic draws, released k-shot layout, bad input."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lowshot.data.av.datasets import dataset_spec
from lowshot.data.av.fsl import (
    TABLE_4_1,
    check_draws,
    csv_class_videos,
    draw_novel_shots,
    gfsl_from_gzsl,
    gfsl_partition,
    load_kshot_benchmark,
    read_draw_file,
    table_4_1_counts,
    table_4_1_mismatches,
)
from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.data.av.splits import load_class_split
from lowshot.errors import DataError

GZSL_STAGES = ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen", "stage_2_test_seen", "stage_2_test_unseen")


@pytest.mark.parametrize("dataset", ["VGGSound", "UCF", "ActivityNet"])
def test_partition_counts_match_table_4_1(shared_data: Path, dataset: str) -> None:
    root = shared_data / "av_gzsl" / dataset / "class-split"
    part = gfsl_partition(load_class_split(root, dataset_spec(dataset)))
    videos = {s: csv_class_videos(root, s) for s in GZSL_STAGES}
    counts = table_4_1_counts(part, videos, k=5)
    assert counts == TABLE_4_1[dataset]
    assert table_4_1_mismatches(dataset, counts, 5) == []
    # another k changes only the video counts of the novel folders
    k1 = table_4_1_counts(part, videos, k=1)
    assert k1["classes"] == TABLE_4_1[dataset]["classes"]
    assert k1["stage_1"][1] == len(part.novel_1) and k1["stage_2"][1] == len(part.novel_2)


def test_mismatches_are_reported_entry_by_entry() -> None:
    counts = {**TABLE_4_1["UCF"], "stage_2": (4994, 30, 555, 814)}
    assert table_4_1_mismatches("UCF", counts, 5) == ["UCF stage_2 Test_N: 814, Table 4.1 says 815"]


def test_draws_are_deterministic_and_per_class(tiny_temporal) -> None:
    labels = tiny_temporal.splits["stage_2_test_unseen"].labels
    classes = tiny_temporal.split_classes["stage_2_test_unseen"]
    a = draw_novel_shots(labels, classes, 5, seed=3, draw=0, where="x")
    assert np.array_equal(a, draw_novel_shots(labels, classes, 5, seed=3, draw=0, where="x"))
    assert not np.array_equal(a, draw_novel_shots(labels, classes, 5, seed=3, draw=1, where="x"))
    assert np.array_equal(np.unique(labels[a], return_counts=True)[1], np.full(len(classes), 5))
    with pytest.raises(DataError, match="needs at least 9"):
        draw_novel_shots(labels, classes, 8, seed=0, draw=0, where="x")


def test_generated_benchmark_folders_and_phase_views(tiny_temporal) -> None:
    b = gfsl_from_gzsl(tiny_temporal, 5, seed=0)
    assert len(b.folders["stage_1_train_novel"]) == 5 * 4 and len(b.folders["stage_1_val_novel"]) == 3 * 4
    for d in range(3):
        view = b.phase(2, "full", d)
        assert set(view.train_classes(1)) == set(range(20))
        test_seen, test_novel, _, novel = view.stage_eval(2)
        assert np.intersect1d(test_novel.video_ids, view.stage_train(1).video_ids).size == 0
        assert list(novel) == list(range(14, 20))
    base = b.phase(2, "base")
    assert len(base.stage_train(1)) == sum(len(b.folders[f]) for f in
                                           ("stage_1_train_base", "stage_1_train_novel", "stage_1_val_seen", "stage_1_val_novel"))


def test_unreleased_k_warns_for_generated_draws(tiny_temporal, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        gfsl_from_gzsl(tiny_temporal, 3)
    assert "not comparable" in caplog.text


def test_bad_draws_are_clear_errors(tiny_temporal) -> None:
    b = gfsl_from_gzsl(tiny_temporal, 2, seed=1)
    folders = dict(b.folders)
    test = folders["stage_2_test_novel_1"]
    folders["stage_2_train_novel_1"] = test.subset(np.flatnonzero(np.isin(test.labels, b.partition.novel_2))[
        np.r_[[np.flatnonzero(test.labels == c)[:2] for c in b.partition.novel_2]].ravel() - 0])
    with pytest.raises(DataError, match="also evaluation videos of stage_2_test_novel_1"):
        check_draws(folders, b.partition, 2, "x")
    folders = dict(b.folders)
    tr = folders["stage_1_train_novel"]
    folders["stage_1_train_novel"] = tr.subset(np.arange(len(tr) - 1))
    with pytest.raises(DataError, match="has 1 video"):
        check_draws(folders, b.partition, 2, "x")
    folders = dict(b.folders)
    del folders["stage_2_test_novel_2"]
    with pytest.raises(DataError, match="missing draw folder 'stage_2_test_novel_2'"):
        replace(b, folders=folders)


def test_released_layout_round_trip(tmp_path: Path) -> None:
    import shutil

    from lowshot.data.av.fsl import write_synthetic_kshot

    write_synthetic_kshot(tmp_path, "UCF", 1, seed=0, size=0.01)
    root = tmp_path / ".gzsl_source"
    gzsl = load_gzsl_benchmark(root, "UCF", "cls_features_non_averaged", "cls")
    gen = gfsl_from_gzsl(gzsl, 1, seed=0)
    back = load_kshot_benchmark(tmp_path, "UCF", 1)
    assert set(back.folders) == set(gen.folders)
    for name, fs in gen.folders.items():
        assert sorted(back.folders[name].video_ids) == sorted(fs.video_ids)
    assert np.array_equal(back.class_embeddings[back.partition.classes], gen.class_embeddings[gen.partition.classes])
    ids = read_draw_file(tmp_path / "UCF" / "class-split" / "1-shot" / "stage_2_train_novel_2.csv")
    assert sorted(ids) == sorted(gen.folders["stage_2_train_novel_2"].video_ids)
    with pytest.raises(DataError, match="released archives have k in"):
        load_kshot_benchmark(tmp_path, "UCF", 3)
    shutil.rmtree(tmp_path / "UCF" / "features" / "1-shot" / "audio" / "stage_2_test_novel_1")
    with pytest.raises(DataError, match="missing draw folder"):
        load_kshot_benchmark(tmp_path, "UCF", 1)
