"""Scripted listeners that perceive pixels and answer in text (or with a mask).

They stand in for MLLM listeners offline: they look at the (possibly weakened) pixels, so
grayscale and blur act on them exactly as on an MLLM, and their REI answers go through
the same keyword parser. Perception: background subtraction -> connected components;
shape from box aspect and fill ratio; size from area; material from the fraction of
near-white (specular) pixels; colour = nearest CLEVR RGB of the remaining pixels.
Scoring: an object/image gets +1 per mentioned value it shows and -1 per mentioned value
it contradicts; ties are broken at random (``left_bias`` = probability of "left"). A
message that names no attribute value at all gets "I cannot tell." (ambiguous, so -1),
unless ``guess_without_evidence``: this closes the exploit of saying nothing, which would
otherwise earn chance-level reward. ``abstain_on_ties`` (off by default; the thesis' listeners
always guess) also answers "I cannot tell." when a description fits both images equally.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from lowshot.comm.attributes import COLORS, mentioned_values
from lowshot.comm.render import BACKGROUND

_RGB = np.array(list(COLORS.values()), dtype=float)
_NAMES = list(COLORS)


@dataclass(frozen=True)
class PerceivedObject:
    """What the listener believes it sees: attributes and a ``[H, W]`` bool mask."""

    attributes: dict[str, str]
    mask: np.ndarray


def perceive(image: Image.Image, fg_threshold: float = 40.0, white: float = 240.0,
             min_area: float = 16.0, large_area: float = 369.0) -> list[PerceivedObject]:
    """Objects of a dark-background scene image (see module docstring).

    Args:
        image: RGB image.
        fg_threshold: max channel distance to the background colour to count as object.
        white: channel value above which (all channels) a pixel is a specular highlight.
        min_area: components smaller than this (pixels) are noise.
        large_area: area in pixels separating small from large (objects of the renderer
            keep their pixel size on any canvas).
    """
    a = np.asarray(image.convert("RGB"), dtype=float)
    h, w, _ = a.shape
    fg = np.abs(a - np.array(BACKGROUND, dtype=float)).max(-1) > fg_threshold
    labels, n = ndimage.label(fg)
    out = []
    for k in range(1, n + 1):
        m = labels == k
        area = m.sum()
        if area < min_area:
            continue
        ys, xs = np.nonzero(m)
        bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        fill = area / (bh * bw)
        shape = "cylinder" if bh / bw > 1.35 else ("cube" if fill > 0.9 else "sphere")
        px = a[m]
        hi = (px > white).all(-1)
        material = "metal" if hi.mean() > 0.01 else "rubber"
        body = px[~hi] if (~hi).any() else px
        colour = _NAMES[int(np.argmin(((_RGB - np.median(body, 0)) ** 2).sum(-1)))]
        size = "large" if area > large_area else "small"
        out.append(PerceivedObject(
            {"color": colour, "shape": shape, "size": size, "material": material}, m))
    return out


def score(objects: Sequence[PerceivedObject], mentioned: dict[str, list[str]]) -> int:
    """+1 per mentioned value some object shows, -1 per mentioned value none shows."""
    s = 0
    for t, vals in mentioned.items():
        seen = {o.attributes[t] for o in objects}
        s += sum(1 if v in seen else -1 for v in vals)
    return s


class PixelListener:
    """Rule-based REI/RES listener over pixels.

    Args:
        answer_style: ``"leftright"`` (LLaVA: "left"/"right") or ``"picture"`` (Qwen:
            "Picture 1"/"Picture 2").
        left_bias: probability of answering the first image on a tie.
        seed: seed of tie breaks.
        guess_without_evidence: guess at random on messages without attribute values
            instead of answering "I cannot tell.".
        abstain_on_ties: REI: answer "I cannot tell." (reward -1) when both images score
            the same instead of guessing.
    """

    def __init__(self, answer_style: str = "leftright", left_bias: float = 0.5, seed: int = 0,
                 guess_without_evidence: bool = False, abstain_on_ties: bool = False) -> None:
        if answer_style not in ("leftright", "picture"):
            raise ValueError("answer_style must be 'leftright' or 'picture'")
        self.answer_style = answer_style
        self.left_bias = left_bias
        self.rng = np.random.default_rng(seed)
        self.guess_without_evidence = guess_without_evidence
        self.abstain_on_ties = abstain_on_ties
        self._cache: dict[bytes, list[PerceivedObject]] = {}

    def _perceive(self, image: Image.Image) -> list[PerceivedObject]:
        key = hashlib.blake2b(image.tobytes(), digest_size=16).digest() + bytes(str(image.size), "ascii")
        if key not in self._cache:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = perceive(image)
        return self._cache[key]

    def _words(self, side: int) -> str:
        if self.answer_style == "picture":
            return f"Picture {side + 1}"
        return "left" if side == 0 else "right"

    def answer(self, images: Sequence[tuple[Image.Image, Image.Image]], messages: Sequence[str]) -> list[str]:
        """REI: per (image pair, message), the side whose perceived objects match the
        mentioned values best (ties at random, or "I cannot tell." with ``abstain_on_ties``),
        or "I cannot tell." when the message names none."""
        out = []
        for (a, b), msg in zip(images, messages):
            m = mentioned_values(msg)
            if not m and not self.guess_without_evidence:
                out.append("I cannot tell.")
                continue
            sa, sb = score(self._perceive(a), m), score(self._perceive(b), m)
            if sa == sb and self.abstain_on_ties:
                out.append("I cannot tell.")
                continue
            side = 0 if sa > sb else 1 if sb > sa else int(self.rng.random() >= self.left_bias)
            out.append(self._words(side))
        return out

    def segment(self, images: Sequence[Image.Image], messages: Sequence[str]) -> list[np.ndarray]:
        """RES: per (image, message), the ``[H, W]`` bool mask of the perceived object
        that matches the mentioned values best (ties at random; all False when none is seen)."""
        out = []
        for img, msg in zip(images, messages):
            objs = self._perceive(img)
            if not objs:
                out.append(np.zeros((img.height, img.width), dtype=bool))
                continue
            m = mentioned_values(msg)
            scores = np.array([score([o], m) for o in objs])
            best = np.flatnonzero(scores == scores.max())
            out.append(objs[int(self.rng.choice(best))].mask)
        return out
