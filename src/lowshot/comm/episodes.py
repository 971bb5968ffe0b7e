"""REI and RES episode types and the image items they are drawn from (thesis §7.3, §7.4.1).

The data every comm module shares: pools of :class:`ImageItem` / :class:`RESItem`, and the
episodes built from them. Agents (:mod:`lowshot.comm.agents`) and games
(:mod:`lowshot.comm.games`) both import these; this module imports neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from PIL import Image

from lowshot.comm.perception import draw_red_circle
from lowshot.comm.render import Scene


@dataclass(frozen=True, eq=False)
class ImageItem:
    """An image in a pool: a loader, an optional class label and optional scene annotations."""

    key: str
    load: Callable[[], Image.Image]
    label: str | None = None
    scene: Scene | None = None

    @cached_property
    def image(self) -> Image.Image:
        """The loaded image in RGB (loaded once, then cached)."""
        return self.load().convert("RGB")


@dataclass(frozen=True, eq=False)
class REIEpisode:
    """One REI game.

    Attributes:
        target: the target item; ``confounder``: the other one.
        speaker_target_side: 0 when the target is the left image in the speaker's view.
        listener_target_side: 0 when the target is left / picture 1 for the listener.
    """

    target: ImageItem
    confounder: ImageItem
    speaker_target_side: int
    listener_target_side: int

    @property
    def speaker_images(self) -> tuple[Image.Image, Image.Image]:
        """(left, right) images as the speaker sees them (target on ``speaker_target_side``)."""
        pair = (self.target.image, self.confounder.image)
        return pair if self.speaker_target_side == 0 else (pair[1], pair[0])

    @property
    def listener_images(self) -> tuple[Image.Image, Image.Image]:
        """(left, right) images as the listener sees them (target on ``listener_target_side``)."""
        pair = (self.target.image, self.confounder.image)
        return pair if self.listener_target_side == 0 else (pair[1], pair[0])


@dataclass(frozen=True, eq=False)
class RESItem:
    """An image with referable objects: boxes ``(x0, y0, x1, y1)``, masks and expressions."""

    key: str
    load: Callable[[], Image.Image]
    boxes: tuple[tuple[float, float, float, float], ...]
    masks: Callable[[int], np.ndarray]
    expressions: tuple[tuple[str, ...], ...] = ()
    scene: Scene | None = None

    @cached_property
    def image(self) -> Image.Image:
        """The loaded image in RGB (loaded once, then cached)."""
        return self.load().convert("RGB")


@dataclass(frozen=True, eq=False)
class RESEpisode:
    """One RES game on ``item`` about object ``target``."""

    item: RESItem
    target: int
    circle_width: int = 3
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def speaker_image(self) -> Image.Image:
        """The image with a red circle around the target's box (drawn once, then cached)."""
        if "speaker" not in self._cache:
            self._cache["speaker"] = draw_red_circle(self.item.image, self.item.boxes[self.target],
                                                     self.circle_width)
        return self._cache["speaker"]

    @property
    def listener_image(self) -> Image.Image:
        """The unmarked image."""
        return self.item.image

    @property
    def gt_mask(self) -> np.ndarray:
        """The target object's ``[H, W]`` bool ground-truth mask."""
        return self.item.masks(self.target)

    @property
    def gt_expressions(self) -> tuple[str, ...]:
        """The target's annotated referring expressions (empty when the item has none)."""
        return self.item.expressions[self.target] if self.item.expressions else ()


__all__ = ["ImageItem", "REIEpisode", "RESEpisode", "RESItem"]
