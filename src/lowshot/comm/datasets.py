"""Readers for the REI / RES datasets in their released layouts (thesis §7.4.1).

* CLEVR v1.0: ``scenes/CLEVR_<split>_scenes.json`` + ``images/<split>/*.png`` -> REI items
  with scene annotations (so the GT speaker works on real CLEVR).
* CUB-200-2011: ``images.txt``, ``image_class_labels.txt``, ``classes.txt``,
  ``train_test_split.txt`` (+ optional ``bounding_boxes.txt``) -> REI items labelled by class.
* ImageNet-style class folders: ``<root>/<wnid>/*.JPEG`` with an optional
  ``LOC_synset_mapping.txt`` for names -> REI items labelled by class.
* RefCOCO / RefCOCO+ / RefCOCOg / RefCLEF (``lichengunc/refer`` layout): ``refs(<by>).p``
  (a Python pickle: read only with ``trust_pickle=True``) + ``instances.json`` -> RES items
  (one per image: the referred objects' boxes, masks and human expressions); registered as
  the RES world ``refcoco`` (``data.dataset`` picks RefCOCO / RefCOCO+ / RefCOCOg / RefCLEF).

Masks are decoded without pycocotools: polygons are filled with PIL; RLE (RefCLEF) is
decoded here (COCO's compressed string format and uncompressed counts).
"""

from __future__ import annotations

import json
import pickle
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from lowshot._registry import WORLDS
from lowshot.comm.episodes import ImageItem, RESItem
from lowshot.comm.render import Scene, SceneObject
from lowshot.errors import DataError, UntrustedPickleError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _loader(path: Path):
    def load() -> Image.Image:
        try:
            return Image.open(path).convert("RGB")
        except FileNotFoundError:
            raise DataError(f"image not found: {path}") from None

    return load


# ---------------------------------------------------------------------------- CLEVR
def read_clevr(root: str | Path, split: str = "val") -> list[ImageItem]:
    """CLEVR scenes of ``split`` as REI items (``root`` = ``CLEVR_v1.0`` or its parent)."""
    root = Path(root)
    if (root / "CLEVR_v1.0").is_dir():
        root = root / "CLEVR_v1.0"
    scenes_path = root / "scenes" / f"CLEVR_{split}_scenes.json"
    if not scenes_path.exists():
        raise DataError(f"CLEVR scenes not found: {scenes_path} (test has no scenes)")
    data = json.loads(scenes_path.read_text())
    items = []
    for sc in data["scenes"]:
        objs = tuple(SceneObject(o["color"], o["shape"], o["size"], o["material"]) for o in sc["objects"])
        path = root / "images" / split / sc["image_filename"]
        scene = Scene(objs, 480, 320, sc["image_filename"])
        items.append(ImageItem(sc["image_filename"], _loader(path), None, scene))
    return items


# ---------------------------------------------------------------------------- CUB
def _table(path: Path, ncols: int) -> list[list[str]]:
    if not path.exists():
        raise DataError(f"CUB file not found: {path}")
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            rows.append(parts[: ncols] if ncols else parts)
    return rows


def read_cub(root: str | Path, split: str = "test") -> list[ImageItem]:
    """CUB-200-2011 images of ``split`` (``train``, ``test`` or ``all``), labelled by class name."""
    root = Path(root)
    if (root / "CUB_200_2011").is_dir():
        root = root / "CUB_200_2011"
    paths = {i: p for i, p in _table(root / "images.txt", 2)}
    labels = {i: c for i, c in _table(root / "image_class_labels.txt", 2)}
    classes = {c: n for c, n in _table(root / "classes.txt", 2)}
    is_train = {i: f == "1" for i, f in _table(root / "train_test_split.txt", 2)}
    if split not in ("train", "test", "all"):
        raise DataError(f"CUB split must be train, test or all, got {split!r}")
    items = []
    for i, rel in paths.items():
        if split != "all" and is_train.get(i, False) != (split == "train"):
            continue
        if i not in labels:
            raise DataError(f"CUB image {i} has no class label")
        items.append(ImageItem(i, _loader(root / "images" / rel), classes[labels[i]]))
    return items


# ---------------------------------------------------------------------------- ImageNet folders
def read_image_folder(root: str | Path, synset_file: str | Path | None = None) -> list[ImageItem]:
    """``root/<class>/<image>`` as REI items; labels are class names from ``synset_file`` if given."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    names: dict[str, str] = {}
    if synset_file is not None:
        for line in Path(synset_file).read_text().splitlines():
            if line.strip():
                wnid, _, rest = line.partition(" ")
                names[wnid] = rest.split(",")[0].strip() or wnid
    items = []
    for cdir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(cdir.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                items.append(ImageItem(f"{cdir.name}/{f.name}", _loader(f), names.get(cdir.name, cdir.name)))
    if not items:
        raise DataError(f"no images under {root}/<class>/")
    return items


# ---------------------------------------------------------------------------- dataset worlds
class DatasetWorld:
    """A released dataset as a world (registered in :data:`lowshot._registry.WORLDS`).

    Args:
        read: ``(base, split, options) -> items`` for one split; ``options`` holds the
            resolved data options of a config (``synset_file``, ``image_dir`` as paths or
            None, ``dataset``, ``split_by``, ``trust_pickle``).
        games: the games its items serve (``rei``: :class:`ImageItem` pools, ``res``:
            :class:`RESItem` pools).
        splits: ``(train, test)`` split names used when a config leaves them empty.
    """

    offline = False  # needs the data root and an MLLM speaker

    def __init__(self, read: Any, games: tuple[str, ...] = ("rei",),
                 splits: tuple[str, str] = ("train", "val")) -> None:
        self.read = read
        self.games = games
        self.splits = splits

    def pool(self, base: Path, split: str, options: dict[str, Any] | None = None) -> list[Any]:
        """The items of ``split`` under ``base`` (the dataset folder)."""
        return self.read(base, split, options or {})


WORLDS.register("clevr")(DatasetWorld(lambda base, split, _o: read_clevr(base, split)))
WORLDS.register("cub")(DatasetWorld(lambda base, split, _o: read_cub(base, split), splits=("train", "test")))
WORLDS.register("imagenet")(DatasetWorld(
    lambda base, split, o: read_image_folder(base / split, o.get("synset_file"))))


# ---------------------------------------------------------------------------- RefCOCO
def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (compressed string or uncompressed list counts) -> ``[H, W]`` bool mask."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        s = counts.decode() if isinstance(counts, bytes) else counts
        counts, p = [], 0
        while p < len(s):
            x, k, more = 0, 0, True
            while more:
                c = ord(s[p]) - 48
                x |= (c & 0x1F) << (5 * k)
                more = bool(c & 0x20)
                p += 1
                k += 1
                if not more and (c & 0x10):
                    x |= -1 << (5 * k)
            if len(counts) > 2:
                x += counts[-2]
            counts.append(x)
    flat = np.zeros(h * w, dtype=bool)
    pos, val = 0, False
    for c in counts:
        flat[pos:pos + c] = val
        pos += c
        val = not val
    return flat.reshape(w, h).T  # column-major


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` -> ``[H, W]`` bool mask (union)."""
    img = Image.new("L", (width, height), 0)
    d = ImageDraw.Draw(img)
    for poly in polygons:
        if len(poly) >= 6:
            d.polygon(list(zip(poly[0::2], poly[1::2])), fill=1)
    return np.asarray(img, dtype=bool)


def annotation_mask(ann: dict[str, Any], height: int, width: int) -> np.ndarray:
    """The ``[height, width]`` bool mask of a COCO-style annotation: its polygons, its
    RLE, or (without ``segmentation``) its ``bbox`` ``(x, y, w, h)`` filled."""
    seg = ann.get("segmentation")
    if isinstance(seg, list):
        return polygons_to_mask(seg, height, width)
    if isinstance(seg, dict):
        return rle_decode(seg)
    x, y, bw, bh = ann["bbox"]
    m = np.zeros((height, width), dtype=bool)
    m[int(y):int(np.ceil(y + bh)), int(x):int(np.ceil(x + bw))] = True
    return m


def load_refs(path: str | Path, trust_pickle: bool = False) -> list[dict[str, Any]]:
    """Read a ``refs(<splitBy>).p`` pickle; refuses unless ``trust_pickle`` (pickles run code)."""
    path = Path(path)
    if not trust_pickle:
        raise UntrustedPickleError(
            f"{path} is a pickle, which can execute code when loaded; pass trust_pickle=True "
            "(comm config: data.trust_pickle=true) only for files from a source you trust")
    with open(path, "rb") as fh:
        try:
            return pickle.load(fh)
        except UnicodeDecodeError:
            fh.seek(0)
            return pickle.load(fh, encoding="latin1")


def read_refcoco(data_root: str | Path, dataset: str = "refcoco", split_by: str = "unc",
                 split: str = "val", image_dir: str | Path | None = None,
                 trust_pickle: bool = False) -> list[RESItem]:
    """RES items of one refer split, one item per image with all its referred objects.

    Args:
        data_root: folder holding ``<dataset>/instances.json`` and ``<dataset>/refs(<by>).p``.
        dataset: ``refcoco``, ``refcoco+``, ``refcocog`` or ``refclef``.
        split_by: ``unc``, ``google``, ``umd`` or ``berkeley``.
        split: ``train``, ``val``, ``testA``, ``testB``, ``test`` ...
        image_dir: the COCO ``train2014`` folder (default ``images/mscoco/images/train2014``).
        trust_pickle: required to read the refs pickle.
    """
    data_root = Path(data_root)
    ddir = data_root / dataset
    refs = load_refs(ddir / f"refs({split_by}).p", trust_pickle)
    inst_path = ddir / "instances.json"
    if not inst_path.exists():
        raise DataError(f"instances.json not found: {inst_path}")
    inst = json.loads(inst_path.read_text())
    imgs = {im["id"]: im for im in inst["images"]}
    anns = {a["id"]: a for a in inst["annotations"]}
    image_dir = Path(image_dir) if image_dir else data_root / "images" / "mscoco" / "images" / "train2014"
    per_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in refs:
        if r["split"] == split:
            per_image[r["image_id"]].append(r)
    if not per_image:
        known = sorted({r["split"] for r in refs})
        raise DataError(f"no refs with split {split!r} in {dataset} ({split_by}); known: {known}")
    items = []
    for image_id, rs in sorted(per_image.items()):
        im = imgs[image_id]
        h, w = im["height"], im["width"]
        ann_list = [anns[r["ann_id"]] for r in rs]
        boxes = tuple((a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3])
                      for a in ann_list)
        exprs = tuple(tuple(s["sent"] for s in r["sentences"]) for r in rs)

        def masks(k: int, ann_list=ann_list, h=h, w=w) -> np.ndarray:
            return annotation_mask(ann_list[k], h, w)

        items.append(RESItem(str(image_id), _loader(image_dir / im["file_name"]), boxes, masks, exprs))
    return items


WORLDS.register("refcoco")(DatasetWorld(
    lambda base, split, o: read_refcoco(base, o.get("dataset") or "refcoco", o.get("split_by") or "unc", split,
                                        o.get("image_dir"), bool(o.get("trust_pickle"))),
    games=("res",), splits=("train", "val")))
