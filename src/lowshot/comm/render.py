"""Procedural CLEVR-like scenes drawn with PIL, with their annotations.

Not a re-implementation of CLEVR's Blender renderer: objects are flat 2-D glyphs
(cube = square, sphere = disc, cylinder = taller rectangle), size sets the extent,
metal adds a white specular highlight, and colours are the official CLEVR RGB values.
The background is dark so that every CLEVR colour, also after grayscaling, stands out
(a project choice; CLEVR's background is light gray). Each object carries its box and
mask, so the same scenes serve REI (whole images) and RES (one target object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from lowshot.comm.attributes import ATTRIBUTES, COLORS

BACKGROUND: tuple[int, int, int] = (16, 16, 16)
HIGHLIGHT: tuple[int, int, int] = (255, 255, 255)
#: half-extent per size as a fraction of 64 px (objects keep their pixel size on larger canvases)
HALF_EXTENT = {"large": 0.22, "small": 0.12}
BASE = 64


@dataclass(frozen=True)
class SceneObject:
    """One object: CLEVR attributes plus its pixel box ``(x0, y0, x1, y1)`` (inclusive-exclusive)."""

    color: str
    shape: str
    size: str
    material: str
    box: tuple[int, int, int, int] = (0, 0, 0, 0)

    def attributes(self) -> dict[str, str]:
        """``{attribute type: value}`` of this object (colour, shape, size, material)."""
        return {"color": self.color, "shape": self.shape, "size": self.size, "material": self.material}


@dataclass(frozen=True)
class Scene:
    """A scene: its objects (annotations) and canvas size; :func:`render` draws it."""

    objects: tuple[SceneObject, ...]
    width: int = 64
    height: int = 64
    image_id: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def values(self, attr: str) -> set[str]:
        """The values of attribute type ``attr`` shown by any object of the scene."""
        return {o.attributes()[attr] for o in self.objects}


def sample_object(rng: np.random.Generator) -> SceneObject:
    """Draw attributes uniformly (box filled in by :func:`sample_scene`)."""
    a = {t: str(rng.choice(v)) for t, v in ATTRIBUTES.items()}
    return SceneObject(**a)


def _place(obj: SceneObject, width: int, height: int, cx: float, cy: float) -> SceneObject:
    h = HALF_EXTENT[obj.size] * BASE
    hw, hh = (0.65 * h, 1.1 * h) if obj.shape == "cylinder" else (h, h)
    box = (int(round(cx - hw)), int(round(cy - hh)), int(round(cx + hw)), int(round(cy + hh)))
    return SceneObject(obj.color, obj.shape, obj.size, obj.material, box)


def sample_scene(
    rng: np.random.Generator, n_objects: int = 1, width: int = 64, height: int = 64,
    image_id: str = "", max_tries: int = 200,
) -> Scene:
    """A scene with ``n_objects`` non-overlapping objects at jittered positions."""
    placed: list[SceneObject] = []
    for _ in range(n_objects):
        obj = sample_object(rng)
        for _try in range(max_tries):
            margin = HALF_EXTENT["large"] * BASE * 1.15
            if n_objects == 1:
                cx = width / 2 + rng.uniform(-0.12, 0.12) * width
                cy = height / 2 + rng.uniform(-0.12, 0.12) * height
            else:
                cx, cy = rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)
            cand = _place(obj, width, height, cx, cy)
            if all(not _overlap(cand.box, o.box, pad=3) for o in placed):
                placed.append(cand)
                break
    return Scene(tuple(placed), width, height, image_id)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int], pad: int = 0) -> bool:
    return not (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1])


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject) -> None:
    x0, y0, x1, y1 = obj.box
    fill = COLORS[obj.color]
    if obj.shape == "sphere":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
    else:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    if obj.material == "metal":
        w, h = x1 - x0, y1 - y0
        hx, hy = x0 + 0.3 * w, y0 + 0.3 * h
        r = max(1.5, 0.14 * min(w, h))
        draw.ellipse((hx - r, hy - r, hx + r, hy + r), fill=HIGHLIGHT)


def render(scene: Scene) -> Image.Image:
    """Draw ``scene`` as an RGB image of ``scene.width x scene.height``."""
    img = Image.new("RGB", (scene.width, scene.height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        _draw_object(draw, obj)
    return img


def object_mask(scene: Scene, index: int) -> np.ndarray:
    """``[H, W]`` bool ground-truth mask of object ``index`` (its drawn glyph)."""
    img = Image.new("L", (scene.width, scene.height), 0)
    obj = scene.objects[index]
    x0, y0, x1, y1 = obj.box
    d = ImageDraw.Draw(img)
    if obj.shape == "sphere":
        d.ellipse((x0, y0, x1 - 1, y1 - 1), fill=255)
    else:
        d.rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)
    return np.asarray(img) > 0


def scene_to_clevr(scene: Scene, split: str = "train", index: int = 0) -> dict:
    """The scene as a CLEVR ``scenes.json`` entry (``pixel_coords`` = box centre, depth 0)."""
    objs = []
    for o in scene.objects:
        cx, cy = (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2
        objs.append({
            "color": o.color, "shape": o.shape, "size": o.size, "material": o.material,
            "3d_coords": [0.0, 0.0, 0.0], "pixel_coords": [cx, cy, 0.0], "rotation": 0.0,
        })
    return {
        "split": split, "image_index": index,
        "image_filename": f"CLEVR_{split}_{index:06d}.png", "objects": objs,
        "relationships": {"left": [], "right": [], "front": [], "behind": []}, "directions": {},
    }
