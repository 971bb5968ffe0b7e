"""RES on RefCOCO end to end: a tiny fixture written in the refer layout (rendered scenes saved
as COCO JPEGs, ``instances.json`` with polygon masks, a ``refs(unc).p`` pickle with human
expressions), a tiny LLaVA speaker from a local folder, run through ``lowshot comm run``."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")

from lowshot.cli.main import main  # noqa: E402
from lowshot.comm.datasets import read_refcoco  # noqa: E402
from lowshot.comm.render import render, sample_scene  # noqa: E402
from lowshot.comm.tiny import tiny_llava  # noqa: E402
from lowshot.comm.world import vocabulary  # noqa: E402
from lowshot.errors import ConfigError  # noqa: E402
from lowshot.recipes.comm import load_config  # noqa: E402

COCO_DIR = Path("images") / "mscoco" / "images" / "train2014"


def _polygon(obj) -> list[float]:
    """The object's outline as a COCO polygon: a 24-gon for spheres, the box otherwise."""
    x0, y0, x1, y1 = obj.box
    if obj.shape != "sphere":
        return [x0, y0, x1, y0, x1, y1, x0, y1]
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return [v for k in range(24) for v in (cx + rx * math.cos(2 * math.pi * k / 24),
                                           cy + ry * math.sin(2 * math.pi * k / 24))]


def write_refcoco(root: Path, n_images: int = 6, seed: int = 0) -> Path:
    """A RefCOCO (UNC) fixture under ``root``: 3-object scenes, train and val images."""
    rng = np.random.default_rng(seed)
    (root / COCO_DIR).mkdir(parents=True)
    (root / "refcoco").mkdir()
    images, anns, refs = [], [], []
    for i in range(n_images):
        image_id = 1000 + i
        scene = sample_scene(rng, n_objects=3, width=96, height=96)
        name = f"COCO_train2014_{image_id:012d}.jpg"
        render(scene).save(root / COCO_DIR / name, quality=95)
        images.append({"id": image_id, "file_name": name, "height": 96, "width": 96})
        split = "val" if i % 2 else "train"
        for k, obj in enumerate(scene.objects):
            ann_id = 10 * image_id + k
            x0, y0, x1, y1 = obj.box
            anns.append({"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                         "segmentation": [_polygon(obj)]})
            sent = f"the {obj.color} {obj.shape}"
            refs.append({"ref_id": ann_id, "ann_id": ann_id, "image_id": image_id, "category_id": 1,
                         "split": split, "sent_ids": [ann_id], "file_name": f"{name[:-4]}_{ann_id}.jpg",
                         "sentences": [{"sent_id": ann_id, "sent": sent, "raw": sent.capitalize(),
                                        "tokens": sent.split()}]})
    inst = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "object", "supercategory": "object"}]}
    (root / "refcoco" / "instances.json").write_text(json.dumps(inst))
    with open(root / "refcoco" / "refs(unc).p", "wb") as fh:
        pickle.dump(refs, fh, protocol=2)
    model, proc = tiny_llava(vocabulary() + ["the", "highlighted", "object"])
    model.save_pretrained(root / "tiny-llava")
    proc.save_pretrained(root / "tiny-llava")
    return root


@pytest.fixture(scope="module")
def refcoco_root(tmp_path_factory) -> Path:
    return write_refcoco(tmp_path_factory.mktemp("refcoco_data"))


def test_fixture_is_read_back_with_polygon_masks(refcoco_root):
    items = read_refcoco(refcoco_root, split="val", trust_pickle=True)
    assert len(items) == 3 and all(len(it.boxes) == 3 for it in items)
    m = items[0].masks(0)
    x0, y0, x1, y1 = (int(v) for v in items[0].boxes[0])
    assert m.shape == (96, 96) and m[(y0 + y1) // 2, (x0 + x1) // 2] and not m[:, : max(0, x0 - 1)].any()


def test_refcoco_is_an_res_world():
    # before: every dataset world was refused for RES ("runs in the synthetic world only")
    cfg = load_config({"name": "x", "world": "refcoco", "game": "res", "speaker": {"family": "llava"},
                       "algorithms": {"kto": {"binary_ge": True, "desirable_threshold": 0.5}}})
    assert cfg.world == "refcoco"
    with pytest.raises(ConfigError, match="world 'refcoco' does not play game 'rei'"):
        load_config({"name": "x", "world": "refcoco", "game": "rei"})


def _run(root: Path, run_dir: Path, *extra: str) -> int:
    return main(["comm", "run", "refcoco_paligemma", "speaker.path=tiny-llava", "speaker.dtype=float32",
                 "speaker.max_new_tokens=3", "listener.family=pixel", "listener.path=",
                 "listener.mask_decoder=", "listeners=[normal,grayscale]", "test_episodes=6",
                 "algorithms={kto: {lr: 0.001, desirable_threshold: 0.5, binary_ge: true}}",
                 "loop.interactions=6", "loop.eval_every=3", "loop.sampling.max_new_tokens=3",
                 "lora.r=4", "lora.alpha=8.0", "compute.precision=float32", "compute.gradient_checkpointing=false",
                 *extra, "--data-root", str(root), "--run-dir", str(run_dir),
                 "--json", str(run_dir.parent / f"{run_dir.name}.json")])


def test_lowshot_comm_runs_res_on_refcoco(refcoco_root, tmp_path, capsys):
    # the refs are a pickle: without trust the run stops with a one-line error (exit 2)
    assert _run(refcoco_root, tmp_path / "untrusted") == 2
    assert "trust_pickle" in capsys.readouterr().err
    assert _run(refcoco_root, tmp_path / "run", "data.trust_pickle=true") == 0
    res = json.loads((tmp_path / "run.json").read_text())
    assert [r["listener"] for r in res["extra"]["runs"]] == ["normal", "grayscale"]
    for run in res["extra"]["runs"]:
        assert [c["interactions"] for c in run["curve"]] == [0, 3, 6]
        assert all(0.0 <= c["miou"] <= 1.0 for c in run["curve"])
    assert (tmp_path / "run" / "checkpoints" / "kto-grayscale-s0" / "last.safetensors").exists()
    # the human expressions ("the red cube") locate their objects for the listener: the
    # polygon masks, boxes and JPEG pixels of the fixture agree (a random object: ~1/3)
    ref = res["extra"]["human_reference"]
    assert set(ref) == {"normal/s0", "grayscale/s0"} and ref["normal/s0"]["miou"] > 0.6
    assert "human expressions normal/s0" in capsys.readouterr().out
