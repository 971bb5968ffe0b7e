"""S3D-G (Xie et al., ECCV 2018) as trained by MIL-NCE on HowTo100M (Miech et al., CVPR 2020),
own port, as used for the adverb features (thesis §6.4; reference ``adverbs.md`` §2.2):
one 16-frame stack per second, 224 x 224, -> ``mixed_5c`` (1024-d, mean-pooled) or the
512-d ``video_embedding`` of the joint text-video space.

Layer names follow ``s3d_howto100m.pth`` (``conv1``, ``conv_2b``, ``conv_2c``, ``gating``,
``mixed_3b`` ... ``mixed_5c``, ``fc``; ``text_module.*`` is ignored here, see
:mod:`lowshot.extract.text`), so the published file loads (after conversion to a tensor-only
state dict or ``.safetensors`` if it holds more than tensors). Widths are read from the
checkpoint: every published width divided by the same factor gives a tiny checkpoint of the
same architecture (tests).

Behaviour kept from the published model: the space-to-depth first convolution with the
one-step crop that mimics TensorFlow SAME padding; max-pools with TF SAME padding and
``ceil_mode``; self-gating after ``conv_2c`` and on every inception branch; frames in BGR order
scaled to [0, 1] (the released adverb features were extracted from OpenCV's BGR frames;
``bgr=False`` feeds RGB). Differences: frames are sampled at 16 fps by our decoder (16 frames a
second) instead of 16 indices evenly spaced over each second's frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import ENCODERS
from lowshot.errors import DataError
from lowshot.extract import segments
from lowshot.extract.base import AVEncoder, load_checked, read_state_dict, require

#: inception blocks: name -> (b0, b1a, b1b, b2a, b2b, b3b) published widths
INCEPTIONS = {
    "mixed_3b": (64, 96, 128, 16, 32, 32), "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64), "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64), "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128), "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}


class Unit(nn.Module):
    """Conv3d (no bias) + BN + ReLU, optionally separable: (1, k, k) then (k, 1, 1)."""

    def __init__(self, c_in: int, c_out: int, k: tuple[int, int, int], stride: int = 1,
                 padding: int | tuple[int, int, int] = 0, separable: bool = False) -> None:
        super().__init__()
        self.separable = separable
        if separable:
            p = padding if isinstance(padding, int) else padding[1]
            self.conv1 = nn.Conv3d(c_in, c_out, (1, k[1], k[2]), (1, stride, stride), (0, p, p), bias=False)
            self.bn1 = nn.BatchNorm3d(c_out)
            pt = padding if isinstance(padding, int) else padding[0]
            self.conv2 = nn.Conv3d(c_out, c_out, (k[0], 1, 1), (stride, 1, 1), (pt, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(c_out)
        else:
            self.conv1 = nn.Conv3d(c_in, c_out, k, stride, padding, bias=False)
            self.bn1 = nn.BatchNorm3d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C_in, T, H, W]`` -> ``[N, C_out, T', H', W']``."""
        x = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(x))) if self.separable else x


class Gating(nn.Module):
    """Self-gating: channels scaled by sigmoid(fc(spatio-temporal mean))."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` -> same shape."""
        return torch.sigmoid(self.fc(x.mean((2, 3, 4))))[:, :, None, None, None] * x


class Inception(nn.Module):
    """Four gated branches: 1x1; 1x1 -> sep 3x3; 1x1 -> sep 3x3; max-pool 3 -> 1x1."""

    def __init__(self, c_in: int, w: tuple[int, ...]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = w
        one = (1, 1, 1)
        self.conv_b0 = Unit(c_in, b0, one)
        self.conv_b1_a, self.conv_b1_b = Unit(c_in, b1a, one), Unit(b1a, b1b, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a, self.conv_b2_b = Unit(c_in, b2a, one), Unit(b2a, b2b, (3, 3, 3), padding=1, separable=True)
        self.conv_b3_b = Unit(c_in, b3b, one)
        self.gating_b0, self.gating_b1, self.gating_b2, self.gating_b3 = Gating(b0), Gating(b1b), Gating(b2b), Gating(b3b)
        self.out = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C_in, T, H, W]`` -> ``[N, out, T, H, W]``."""
        b3 = F.max_pool3d(x, 3, 1, 1)
        return torch.cat([
            self.gating_b0(self.conv_b0(x)), self.gating_b1(self.conv_b1_b(self.conv_b1_a(x))),
            self.gating_b2(self.conv_b2_b(self.conv_b2_a(x))), self.gating_b3(self.conv_b3_b(b3)),
        ], 1)


def tf_same_pool(x: torch.Tensor, k: tuple[int, int, int], s: tuple[int, int, int]) -> torch.Tensor:
    """``[B, C, T, H, W]`` max-pooled with TensorFlow SAME padding (zeros; inputs are post-ReLU) and ``ceil_mode``."""
    pads: list[int] = []
    for kd, sd in zip(reversed(k), reversed(s)):
        total = max(kd - sd, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool3d(F.pad(x, pads), k, s, ceil_mode=True)


class S3DG(nn.Module):
    """S3D-G video trunk + fc: ``[N, 3, T, H, W]`` in [0, 1] -> (``mixed_5c`` ``[N, 1024/d]``, ``fc`` ``[N, out]``).

    Args:
        div: every published width divided by ``div`` (1 = the published model).
        out: fc size (512).
        space_to_depth: the published first layer (24 input channels after a 2x2x2 space-to-depth).
    """

    def __init__(self, div: int = 1, out: int = 512, space_to_depth: bool = True) -> None:
        super().__init__()
        self.space_to_depth = space_to_depth
        c1 = 64 // div
        self.conv1 = (Unit(24, c1, (2, 4, 4), 1, (1, 2, 2)) if space_to_depth
                      else Unit(3, c1, (3, 7, 7), 2, (1, 3, 3)))
        self.conv_2b = Unit(c1, c1, (1, 1, 1))
        self.conv_2c = Unit(c1, 192 // div, (3, 3, 3), padding=1, separable=True)
        self.gating = Gating(192 // div)
        c = 192 // div
        for name, w in INCEPTIONS.items():
            block = Inception(c, tuple(v // div for v in w))
            setattr(self, name, block)
            c = block.out
        self.fc = nn.Linear(c, out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, 3, T, H, W]`` (T, H, W even) -> (mixed_5c pooled, video embedding)."""
        if self.space_to_depth:
            n, ch, t, h, w = x.shape
            x = x.view(n, ch, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
            x = self.conv1(x.reshape(n, 8 * ch, t // 2, h // 2, w // 2))[:, :, 1:, 1:, 1:]
        else:
            x = self.conv1(x)
        x = tf_same_pool(x, (1, 3, 3), (1, 2, 2))
        x = self.gating(self.conv_2c(self.conv_2b(x)))
        x = tf_same_pool(x, (1, 3, 3), (1, 2, 2))
        x = self.mixed_3c(self.mixed_3b(x))
        x = tf_same_pool(x, (3, 3, 3), (2, 2, 2))
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            x = getattr(self, name)(x)
        x = tf_same_pool(x, (2, 2, 2), (2, 2, 2))
        pooled = self.mixed_5c(self.mixed_5b(x)).mean((2, 3, 4))
        return pooled, self.fc(pooled)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], path: str | Path) -> S3DG:
        """The architecture whose widths match ``state`` (DataError for another architecture)."""
        require(state, ["conv1.conv1.weight", "conv_2c.conv1.weight", "mixed_5c.conv_b0.conv1.weight", "fc.weight"], path, "S3D")
        w = state["conv1.conv1.weight"]
        if 64 % int(w.shape[0]):
            raise DataError(f"{path}: not a S3D checkpoint (conv1 has {w.shape[0]} channels)")
        model = cls(64 // int(w.shape[0]), int(state["fc.weight"].shape[0]), int(w.shape[1]) == 24)
        load_checked(model, state, path, "S3D", ignore=("text_module.",))
        return model


@ENCODERS.register("av.s3d")
class S3DEncoder(AVEncoder):
    """S3D-HowTo100M video features: one row per second (16-frame stacks at 16 fps).

    Args:
        weights: tensor-only ``s3d_howto100m.pth`` state dict or ``.safetensors``.
        output: ``mixed_5c`` (1024-d, the released adverb features) or ``video_embedding`` (512-d).
        bgr: feed BGR frames, as the released features (True) or RGB.
        size: crop size (224; smaller only for tests).
        device: torch device.
    """

    modality, kind, step, rate, batch = "video", "s3d", 1.0, 16.0, 2

    def __init__(self, weights: str | Path | None = None, output: str = "mixed_5c", bgr: bool = True,
                 size: int = 224, device: str = "cpu") -> None:
        if output not in ("mixed_5c", "video_embedding"):
            raise DataError(f"S3D output must be 'mixed_5c' or 'video_embedding', got '{output}'")
        state = read_state_dict(weights, "S3D", "s3d_howto100m.pth (tensor-only state dict) or a converted .safetensors")
        self.model = S3DG.from_state(state, weights).to(device).eval()  # type: ignore[arg-type]
        self.output, self.bgr, self.size, self.device = output, bgr, size, device
        self.dim = int(self.model.fc.in_features if output == "mixed_5c" else self.model.fc.out_features)

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """16 fps frames -> ``[N, 16, H, W, 3]`` stacks (one per second)."""
        return segments.clips(stream, 16)

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, 16, H, W, 3]`` uint8 -> ``[n, dim]``."""
        n = len(segs)
        short = max(self.size, round(self.size * 226 / 224))
        frames = segments.resize_crop(segs.reshape(-1, *segs.shape[2:]), short, self.size) / 255.0
        if self.bgr:
            frames = frames[..., ::-1]
        x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(n, 16, self.size, self.size, 3).permute(0, 4, 1, 2, 3)
        pooled, emb = self.model(x.contiguous().float().to(self.device))
        return (pooled if self.output == "mixed_5c" else emb).cpu()
