"""Dataset readers on tiny files written in the released layouts."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from lowshot.comm.datasets import (
    annotation_mask,
    read_clevr,
    read_cub,
    read_image_folder,
    read_refcoco,
    rle_decode,
)
from lowshot.comm.games import sample_rei_episodes, sample_res_episodes
from lowshot.comm.gt_speaker import GTSpeaker
from lowshot.comm.render import render, sample_scene, scene_to_clevr
from lowshot.errors import DataError, UntrustedPickleError


def _img(path, color=(10, 20, 30), size=(16, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_clevr_reader_gives_scenes_for_gt_speaker(tmp_path):
    root = tmp_path / "CLEVR_v1.0"
    rng = np.random.default_rng(0)
    scenes = []
    for i in range(4):
        s = sample_scene(rng, n_objects=2, width=96, height=96)
        entry = scene_to_clevr(s, "val", i)
        render(s).save((root / "images" / "val").mkdir(parents=True, exist_ok=True) or
                       root / "images" / "val" / entry["image_filename"])
        scenes.append(entry)
    (root / "scenes").mkdir()
    (root / "scenes" / "CLEVR_val_scenes.json").write_text(json.dumps({"info": {}, "scenes": scenes}))
    items = read_clevr(tmp_path, "val")
    assert len(items) == 4 and items[0].image.size == (96, 96)
    assert [o.color for o in items[1].scene.objects] == [o["color"] for o in scenes[1]["objects"]]
    eps = sample_rei_episodes(items, 5, rng)
    assert all(isinstance(d, str) for d in GTSpeaker().describe(eps))
    with pytest.raises(DataError):
        read_clevr(tmp_path, "test")


def test_cub_reader_splits_and_labels(tmp_path):
    root = tmp_path / "CUB_200_2011"
    rels = ["001.Black_footed_Albatross/a.jpg", "001.Black_footed_Albatross/b.jpg", "002.Laysan_Albatross/c.jpg"]
    for r in rels:
        _img(root / "images" / r)
    (root / "images.txt").write_text("".join(f"{i + 1} {r}\n" for i, r in enumerate(rels)))
    (root / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n")
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    (root / "train_test_split.txt").write_text("1 1\n2 0\n3 0\n")
    test = read_cub(tmp_path, "test")
    assert [it.key for it in test] == ["2", "3"]
    assert test[1].label == "002.Laysan_Albatross" and test[0].image.size == (16, 12)
    assert len(read_cub(root, "all")) == 3
    eps = sample_rei_episodes(read_cub(root, "all"), 10, np.random.default_rng(0))
    assert all(e.target.label != e.confounder.label for e in eps)
    with pytest.raises(DataError):
        read_cub(root, "val")


def test_image_folder_reader_with_synsets(tmp_path):
    for wnid in ("n01440764", "n01443537"):
        for k in range(2):
            _img(tmp_path / "val" / wnid / f"{k}.JPEG")
    (tmp_path / "val" / "n01440764" / "notes.txt").write_text("x")
    syn = tmp_path / "LOC_synset_mapping.txt"
    syn.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    items = read_image_folder(tmp_path / "val", syn)
    assert len(items) == 4 and {it.label for it in items} == {"tench", "goldfish"}
    with pytest.raises(DataError):
        read_image_folder(tmp_path / "missing")


def _rle_encode(mask):
    """Uncompressed COCO RLE (column-major runs starting with 0)."""
    flat = mask.T.reshape(-1)
    counts, cur, n = [], False, 0
    for v in flat:
        if v == cur:
            n += 1
        else:
            counts.append(n)
            cur, n = v, 1
    counts.append(n)
    return {"size": list(mask.shape), "counts": counts}


def test_rle_decoding_uncompressed_and_compressed():
    m = np.zeros((5, 4), dtype=bool)
    m[1:3, 1:4] = True
    assert (rle_decode(_rle_encode(m)) == m).all()
    # compressed string of pycocotools for a 3x3 mask with the centre pixel set: counts [4, 1, 4]
    assert rle_decode({"size": [3, 3], "counts": "414"}).sum() == 1
    assert rle_decode({"size": [3, 3], "counts": "414"})[1, 1]
    # from the 4th run on, counts are stored as differences to the run two before: 2,3,4,5
    runs = rle_decode({"size": [2, 7], "counts": "2342"}).T.reshape(-1)
    assert runs.tolist() == [False] * 2 + [True] * 3 + [False] * 4 + [True] * 5


def test_refcoco_reader_needs_trust_and_builds_res_items(tmp_path):
    d = tmp_path / "refcoco"
    d.mkdir()
    imgdir = tmp_path / "images" / "mscoco" / "images" / "train2014"
    _img(imgdir / "COCO_train2014_000000000001.jpg", size=(40, 30))
    inst = {
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "height": 30, "width": 40}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0,
             "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]]},
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [20, 10, 10, 10], "area": 100, "iscrowd": 0,
             "segmentation": [[20, 10, 30, 10, 30, 20, 20, 20]]},
        ],
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
    }
    (d / "instances.json").write_text(json.dumps(inst))
    refs = [
        {"ref_id": 0, "ann_id": 10, "image_id": 1, "category_id": 1, "split": "val", "sent_ids": [0],
         "file_name": "COCO_train2014_000000000001_0.jpg",
         "sentences": [{"sent_id": 0, "sent": "left man", "raw": "Left man", "tokens": ["left", "man"]}]},
        {"ref_id": 1, "ann_id": 11, "image_id": 1, "category_id": 1, "split": "val", "sent_ids": [1],
         "file_name": "COCO_train2014_000000000001_1.jpg",
         "sentences": [{"sent_id": 1, "sent": "right man", "raw": "right man", "tokens": ["right", "man"]}]},
        {"ref_id": 2, "ann_id": 11, "image_id": 1, "category_id": 1, "split": "train", "sent_ids": [2],
         "file_name": "x", "sentences": [{"sent_id": 2, "sent": "x", "raw": "x", "tokens": ["x"]}]},
    ]
    with open(d / "refs(unc).p", "wb") as fh:
        pickle.dump(refs, fh, protocol=2)
    with pytest.raises(UntrustedPickleError):
        read_refcoco(tmp_path, split="val")
    items = read_refcoco(tmp_path, split="val", trust_pickle=True)
    assert len(items) == 1 and items[0].boxes == ((5, 5, 15, 15), (20, 10, 30, 20))
    assert items[0].expressions == (("left man",), ("right man",))
    m = items[0].masks(1)
    assert m.shape == (30, 40) and m[15, 25] and not m[8, 8]
    ep = sample_res_episodes(items, 4, np.random.default_rng(0))[0]
    assert ep.speaker_image.size == (40, 30) and ep.gt_expressions
    with pytest.raises(DataError, match="known"):
        read_refcoco(tmp_path, split="testA", trust_pickle=True)
    box_only = annotation_mask({"bbox": [1, 1, 2, 2]}, 5, 5)
    assert box_only.sum() == 4
