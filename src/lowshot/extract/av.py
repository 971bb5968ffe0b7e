"""The audio-visual encoders registered in ENCODERS (``av.*``, ``text.clip/clap``), and building one by name."""

from __future__ import annotations

import inspect

from lowshot._registry import ENCODERS
from lowshot.errors import ConfigError
from lowshot.extract import c3d, effnet, hf, s3d, selavi, text, vggish  # noqa: F401  (register the encoders)
from lowshot.extract.base import AVEncoder


def build_encoder(name: str, weights: str | None, modality: str) -> AVEncoder:
    """An AV encoder by ENCODERS name, with ``weights`` as its weights file / model directory.

    Raises:
        ConfigError: unknown name, an encoder of the other modality, or weights it does not take.
    """
    cls = ENCODERS.get(name)
    if getattr(cls, "modality", None) != modality:
        raise ConfigError(f"encoder '{name}' is not a {modality} encoder")
    params = inspect.signature(cls).parameters
    key = next((k for k in ("weights", "model_dir") if k in params), None)
    if weights is not None and key is None:
        raise ConfigError(f"encoder '{name}' takes no weights path")
    return cls(**({key: weights} if key and weights is not None else {}))


def build_encoders(spec: dict[str, tuple[str, str | None]]) -> dict[str, AVEncoder]:
    """``{modality: (name, weights)}`` -> ``{modality: encoder}`` (picklable with functools.partial)."""
    return {m: build_encoder(name, weights, m) for m, (name, weights) in spec.items()}
