"""CLIP and CLAP through ``transformers``, weights from a local model directory (never a hub).

As used by ClipClap-GZSL (thesis §5.3): CLIP (ViT-B/32, 512-d) on the middle frame of a
video, CLAP (1024-d) on a centred 10 s crop of the audio, and both text towers for the
class-label prompt ensembles (:mod:`lowshot.extract.labels`).

The directory is anything ``save_pretrained`` wrote (``config.json`` + weights, and the
tokenizer / feature-extractor files where they are used). ``open_clip`` checkpoints are not
read (``open_clip`` needs torchvision, which does not install next to the pinned torch):
convert them to a transformers ``CLIPModel`` directory first.

Differences from the published code: the published CLAP features come from the WavCaps
HTSAT-BERT model at 32 kHz, which has no transformers port; any transformers
``ClapModel`` directory is accepted and the crop is taken at its feature extractor's rate.
CLIP frames are resized (short side) and centre-cropped by our resampler, with CLIP's mean/std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowshot._registry import ENCODERS
from lowshot.errors import DataError
from lowshot.extract import segments
from lowshot.extract.base import AVEncoder

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _pretrained(cls: Any, path: str | Path | None, what: str, expected: str) -> Any:
    """``cls.from_pretrained(path)`` offline, with a clear error for a missing or wrong directory."""
    if path is None or not (Path(path) / "config.json").is_file() and cls.__name__.endswith("Model"):
        raise DataError(f"{what} model not found: expected a local directory with config.json and weights "
                        f"({expected}) at {path or '(no path given)'}; nothing is downloaded")
    try:
        return cls.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a {what} directory ({type(err).__name__}: {str(err).splitlines()[0]})") from None


def _check_type(model: Any, model_type: str, path: str | Path, what: str) -> Any:
    got = getattr(model.config, "model_type", "?")
    if got != model_type:
        raise DataError(f"{path}: not a {what} checkpoint (config model_type '{got}', expected '{model_type}')")
    return model.eval()


def _features(out: Any) -> torch.Tensor:
    """The projected embedding of ``get_*_features`` (a tensor, or ``pooler_output`` in transformers 5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def load_clip(path: str | Path | None) -> Any:
    """A ``CLIPModel`` from a local directory (DataError if absent or another architecture)."""
    from transformers import CLIPModel

    return _check_type(_pretrained(CLIPModel, path, "CLIP", "e.g. openai/clip-vit-base-patch32"), "clip", path, "CLIP")  # type: ignore[arg-type]


def load_clap(path: str | Path | None) -> Any:
    """A ``ClapModel`` from a local directory (DataError if absent or another architecture)."""
    from transformers import ClapModel

    return _check_type(_pretrained(ClapModel, path, "CLAP", "e.g. laion/clap-htsat-unfused"), "clap", path, "CLAP")  # type: ignore[arg-type]


@ENCODERS.register("av.clip")
class CLIPImageEncoder(AVEncoder):
    """CLIP image embedding of the middle frame (one row per video, not normalised).

    Args:
        model_dir: local ``CLIPModel`` directory.
        device: torch device.
    """

    modality, kind, step, rate, batch = "video", "clip", None, 5.0, 1

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu") -> None:
        self.model = load_clip(model_dir).to(device)
        self.size = int(self.model.config.vision_config.image_size)
        self.dim = int(self.model.config.projection_dim)
        self.device = device

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """Frames -> ``[1, H, W, 3]``: the middle frame."""
        return segments.middle(stream)

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, H, W, 3]`` uint8 -> ``[n, dim]``."""
        x = torch.from_numpy(segments.resize_crop(segs, self.size, self.size)).permute(0, 3, 1, 2) / 255.0
        x = (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
        return _features(self.model.get_image_features(pixel_values=x.to(self.device))).cpu()


@ENCODERS.register("av.clap")
class CLAPAudioEncoder(AVEncoder):
    """CLAP audio embedding of a centred 10 s crop (one row per video).

    Args:
        model_dir: local ``ClapModel`` directory with its feature-extractor config.
        seconds: crop length.
        device: torch device.
    """

    modality, kind, step, batch = "audio", "clap", None, 1

    def __init__(self, model_dir: str | Path | None = None, seconds: float = 10.0, device: str = "cpu") -> None:
        from transformers import ClapFeatureExtractor

        self.model = load_clap(model_dir).to(device)
        self.extractor = _pretrained(ClapFeatureExtractor, model_dir, "CLAP feature extractor", "preprocessor_config.json")
        self.rate = float(self.extractor.sampling_rate)
        self.length = int(round(seconds * self.rate))
        self.dim = int(self.model.config.projection_dim)
        self.device = device

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """Samples -> ``[1, length]`` centred crop."""
        return segments.centre_crop(stream, self.length)[None]

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, length]`` -> ``[n, dim]``."""
        feats = self.extractor(list(segs), sampling_rate=int(self.rate), truncation="rand_trunc", return_tensors="pt")
        return _features(self.model.get_audio_features(input_features=feats["input_features"].to(self.device))).cpu()


class _HFText:
    """Projected text embeddings of a CLIP / CLAP model directory (``[N, dim]``, not normalised)."""

    def __init__(self, model: Any, model_dir: str | Path | None, device: str) -> None:
        from transformers import AutoTokenizer

        self.model = model.to(device)
        self.tokenizer = _pretrained(AutoTokenizer, model_dir, "tokenizer", "tokenizer files")
        self.dim = int(self.model.config.projection_dim)
        self.device = device

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` texts -> ``[N, dim]``."""
        tok = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        return _features(self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])).cpu()


@ENCODERS.register("text.clip")
class CLIPTextEncoder(_HFText):
    """CLIP text tower from a local ``CLIPModel`` directory."""

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu") -> None:
        super().__init__(load_clip(model_dir), model_dir, device)


@ENCODERS.register("text.clap")
class CLAPTextEncoder(_HFText):
    """CLAP text tower from a local ``ClapModel`` directory."""

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu") -> None:
        super().__init__(load_clap(model_dir), model_dir, device)
