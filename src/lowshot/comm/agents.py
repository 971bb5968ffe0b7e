"""Speaker and listener interfaces shared by scripted agents and MLLMs.

Listeners answer in free text (REI) or with a mask (RES); the games turn answers into
rewards with the same parser for every listener. A perceptual weakness wraps any listener
(:class:`Weakened`) and only changes the pixels that listener sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from lowshot.comm.episodes import REIEpisode, RESEpisode
from lowshot.comm.perception import Transform


@runtime_checkable
class REISpeaker(Protocol):
    """Describes the target of each episode (it sees ``episode.speaker_images``)."""

    def describe(self, episodes: Sequence[REIEpisode]) -> list[str]: ...


@runtime_checkable
class RESSpeaker(Protocol):
    """Describes the circled object of each episode (``episode.speaker_image``)."""

    def describe_object(self, episodes: Sequence[RESEpisode]) -> list[str]: ...


@runtime_checkable
class REIListener(Protocol):
    """Given two images (listener order) and a message, answers in free text."""

    def answer(self, images: Sequence[tuple[Image.Image, Image.Image]], messages: Sequence[str]) -> list[str]: ...


@runtime_checkable
class RESListener(Protocol):
    """Given an image and a message, returns an ``[H, W]`` bool mask of the referred object."""

    def segment(self, images: Sequence[Image.Image], messages: Sequence[str]) -> list[np.ndarray]: ...


class Weakened:
    """Any listener seeing the world through ``transform`` (colour blindness, blur, ...)."""

    def __init__(self, listener: object, transform: Transform) -> None:
        self.listener = listener
        self.transform = transform

    def answer(self, images: Sequence[tuple[Image.Image, Image.Image]], messages: Sequence[str]) -> list[str]:
        seen = [(self.transform(a), self.transform(b)) for a, b in images]
        return self.listener.answer(seen, messages)  # type: ignore[attr-defined]

    def segment(self, images: Sequence[Image.Image], messages: Sequence[str]) -> list[np.ndarray]:
        return self.listener.segment([self.transform(im) for im in images], messages)  # type: ignore[attr-defined]
