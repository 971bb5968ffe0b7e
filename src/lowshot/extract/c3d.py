"""C3D (Tran et al., ICCV 2015), own port, as used for the ``cls`` video features (thesis
§3.4.1): 16-frame clips at 25 fps (0.64 s a step), 112 x 112 crops -> fc7 (4096-d, post-ReLU).

Layer names follow the widely used PyTorch conversion of the Sports-1M model
(``conv1, conv2, conv3a/b, conv4a/b, conv5a/b, fc6, fc7[, fc8]``), so ``c3d.pickle`` state
dicts load; widths are read from the checkpoint (tiny random-initialised checkpoints load too).

Differences from the published code: frames are resized to a short side of 128 (128 x 171 for 4:3) with our bilinear
resampler and the per-channel Sports-1M mean (``pixel_mean``) is subtracted, instead of the
full mean cube.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from lowshot._registry import ENCODERS
from lowshot.extract import segments
from lowshot.extract.base import AVEncoder, load_checked, read_state_dict, require

CONVS = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")


class C3D(nn.Module):
    """C3D trunk up to fc7: ``[N, 3, 16, 112, 112]`` -> ``[N, fc7]``.

    Args:
        widths: channels of conv1..conv5 (real: 64, 128, 256, 512, 512).
        fc6, fc7: fc widths (real: 4096, 4096).
    """

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 512), fc6: int = 4096, fc7: int = 4096) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        chans = {"conv1": (3, c1), "conv2": (c1, c2), "conv3a": (c2, c3), "conv3b": (c3, c3),
                 "conv4a": (c3, c4), "conv4b": (c4, c4), "conv5a": (c4, c5), "conv5b": (c5, c5)}
        for name, (i, o) in chans.items():
            setattr(self, name, nn.Conv3d(i, o, 3, padding=1))
        self.pool1 = nn.MaxPool3d((1, 2, 2), (1, 2, 2))
        self.pool = nn.MaxPool3d(2, 2)
        self.pool5 = nn.MaxPool3d(2, 2, padding=(0, 1, 1))
        self.fc6 = nn.Linear(c5 * 16, fc6)
        self.fc7 = nn.Linear(fc6, fc7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, 16, 112, 112]`` -> ``[N, fc7]`` post-ReLU fc7 activations."""
        r = torch.relu
        x = self.pool1(r(self.conv1(x)))
        x = self.pool(r(self.conv2(x)))
        x = self.pool(r(self.conv3b(r(self.conv3a(x)))))
        x = self.pool(r(self.conv4b(r(self.conv4a(x)))))
        x = self.pool5(r(self.conv5b(r(self.conv5a(x)))))
        return r(self.fc7(r(self.fc6(x.flatten(1)))))

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], path: str | Path) -> C3D:
        """The architecture whose widths match ``state`` (DataError for another architecture)."""
        require(state, [f"{c}.weight" for c in CONVS] + ["fc6.weight", "fc7.weight"], path, "C3D")
        widths = tuple(int(state[f"{c}.weight"].shape[0]) for c in ("conv1", "conv2", "conv3a", "conv4a", "conv5a"))
        model = cls(widths, int(state["fc6.weight"].shape[0]), int(state["fc7.weight"].shape[0]))
        load_checked(model, state, path, "C3D", ignore=("fc8.",))
        return model


@ENCODERS.register("av.c3d")
class C3DEncoder(AVEncoder):
    """C3D video features, one fc7 row per 16 frames at 25 fps.

    Args:
        weights: ``c3d.pickle`` state dict (PyTorch Sports-1M conversion) or ``.safetensors``.
        pixel_mean: RGB mean subtracted from 0..255 pixels.
        device: torch device.
    """

    modality, kind, step, rate, batch = "video", "c3d", 16 / 25, 25.0, 4

    def __init__(self, weights: str | Path | None = None, pixel_mean: tuple[float, float, float] = (101.4, 97.7, 90.2),
                 device: str = "cpu") -> None:
        state = read_state_dict(weights, "C3D", "c3d.pickle (Sports-1M, PyTorch state dict) or a converted .safetensors")
        self.model = C3D.from_state(state, weights).to(device).eval()  # type: ignore[arg-type]
        self.dim = int(state["fc7.weight"].shape[0])
        self.mean = np.asarray(pixel_mean, np.float32)
        self.device = device

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """25 fps frames -> ``[N, 16, H, W, 3]`` clips."""
        return segments.clips(stream, 16)

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, 16, H, W, 3]`` uint8 -> ``[n, 4096]``."""
        n = len(segs)
        frames = segments.resize_crop(segs.reshape(-1, *segs.shape[2:]), 128, 112) - self.mean
        x = torch.from_numpy(frames).reshape(n, 16, 112, 112, 3).permute(0, 4, 1, 2, 3)
        return self.model(x.contiguous().to(self.device)).cpu()
