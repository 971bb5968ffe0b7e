"""Speaker and listener interfaces shared by scripted agents and MLLMs.

Listeners answer in free text (REI) or with a mask (RES); the games turn answers into
rewards with the same parser for every listener. A perceptual weakness wraps any listener
(:class:`Weakened`) and only changes the pixels that listener sees.

Every agent family (``speaker.family`` / ``listener.family`` in a comm config) is registered
in :data:`FAMILIES`: the offline ones here (``tiny_lm``, ``pixel``), the model-backed MLLM
families in :mod:`lowshot.comm.mllm`. :func:`agent_family` looks one up with a did-you-mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from lowshot._registry import Registry
from lowshot.comm.episodes import REIEpisode, RESEpisode
from lowshot.comm.perception import Transform

#: agent family name -> its :class:`AgentFamily` subclass (``tiny_lm``, ``pixel``, ``llava``, ...).
FAMILIES: Registry = Registry("agent family")


@runtime_checkable
class REISpeaker(Protocol):
    """Describes the target of each episode (it sees ``episode.speaker_images``)."""

    def describe(self, episodes: Sequence[REIEpisode]) -> list[str]:
        """One description of the target per episode."""


@runtime_checkable
class RESSpeaker(Protocol):
    """Describes the circled object of each episode (``episode.speaker_image``)."""

    def describe_object(self, episodes: Sequence[RESEpisode]) -> list[str]:
        """One description of the circled object per episode."""


@runtime_checkable
class REIListener(Protocol):
    """Given two images (listener order) and a message, answers in free text."""

    def answer(self, images: Sequence[tuple[Image.Image, Image.Image]], messages: Sequence[str]) -> list[str]:
        """One free-text answer per (image pair, message)."""


@runtime_checkable
class RESListener(Protocol):
    """Given an image and a message, returns an ``[H, W]`` bool mask of the referred object."""

    def segment(self, images: Sequence[Image.Image], messages: Sequence[str]) -> list[np.ndarray]:
        """One ``[H, W]`` bool mask per (image, message)."""


class Weakened:
    """Any listener seeing the world through ``transform`` (colour blindness, blur, ...)."""

    def __init__(self, listener: object, transform: Transform) -> None:
        self.listener = listener
        self.transform = transform

    def answer(self, images: Sequence[tuple[Image.Image, Image.Image]], messages: Sequence[str]) -> list[str]:
        """The wrapped listener's answers on the transformed image pairs."""
        seen = [(self.transform(a), self.transform(b)) for a, b in images]
        return self.listener.answer(seen, messages)  # type: ignore[attr-defined]

    def segment(self, images: Sequence[Image.Image], messages: Sequence[str]) -> list[np.ndarray]:
        """The wrapped listener's ``[H, W]`` bool masks on the transformed images."""
        return self.listener.segment([self.transform(im) for im in images], messages)  # type: ignore[attr-defined]


class AgentFamily:
    """A registered kind of agent: what it can play and how a listener of it is built.

    Attributes:
        name: the registered name (``speaker.family`` / ``listener.family``).
        model_backed: loaded from a local ``path`` (an MLLM); scripted or offline-world
            agents are built in process.
        roles: what it can play: ``speaker`` and/or ``listener``.
    """

    name = ""
    model_backed = False
    roles: tuple[str, ...] = ("speaker", "listener")

    def listener(self, agent: Any, path: str, segments: bool) -> Any:
        """A base listener of this family (weakened per run by :class:`Weakened`).

        Args:
            agent: the agent's config (:class:`~lowshot.recipes.comm.AgentConfig`).
            path: the model path, resolved against the data root.
            segments: the game answers with masks (RES).
        """
        raise NotImplementedError(f"agent family '{self.name}' cannot be a listener")


@FAMILIES.register("tiny_lm")
class TinyLM(AgentFamily):
    """The offline world's word-level speaker LM (built and pretrained by
    :class:`~lowshot.comm.world.World`; sized by its ``world_config.speaker``)."""

    name = "tiny_lm"
    roles = ("speaker",)


@FAMILIES.register("pixel")
class Pixel(AgentFamily):
    """The scripted pixel listener (:class:`~lowshot.comm.listeners.PixelListener`)."""

    name = "pixel"
    roles = ("listener",)

    def listener(self, agent: Any, path: str, segments: bool) -> Any:
        """A :class:`~lowshot.comm.listeners.PixelListener` with default settings."""
        from lowshot.comm.listeners import PixelListener

        return PixelListener()


def agent_family(name: str, role: str, where: str = "comm") -> AgentFamily:
    """The registered agent family ``name`` (an instance) that can play ``role``.

    The MLLM families register when :mod:`lowshot.comm.mllm` is imported (the comm recipe does;
    importing it here would make ``agents`` and ``mllm`` import each other).

    Raises:
        ConfigError: naming ``where``, for an unknown family (with a did-you-mean) or one
            that cannot play ``role``.
    """
    from lowshot.errors import ConfigError

    try:
        family = FAMILIES.get(name)()
    except ConfigError as err:
        raise ConfigError(f"{where}: {role}.family: {err}") from None
    if role not in family.roles:
        raise ConfigError(f"{where}: {role}.family: agent family '{name}' cannot be a {role} "
                          f"(it can be: {', '.join(family.roles)})")
    return family
