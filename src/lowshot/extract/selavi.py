"""SeLaVi (Asano et al., NeurIPS 2020), own port of its two feature networks, as used for the
``main`` features of AVCA/TCaF (thesis §2.4.1; reference ``av_benchmarks.md`` §2.6): one
512-d audio and one 512-d video vector per second.

* video: R(2+1)D-18 (torchvision's ``r2plus1d_18`` layout, fc removed) on 30 frames at 30 fps,
  short side 112, centre crop 112, ``(x / 255 - 0.45) / 0.225``;
* audio: ResNet-9 (BasicBlock x [1, 1, 1, 1], 1 input channel, fc removed) on a log mel
  filterbank of each second at 48 kHz: 257 filters, 20 ms rectangular windows, 10 ms step,
  1024-point FFT, pre-emphasis 0.97 (``python_speech_features.logfbank`` as SeLaVi's default
  ``aud_spec_type=2``), ``[1, 257, 99]``.

Weights: a SeLaVi checkpoint (``AVModel`` state dict: ``video_network.base.*`` and
``audio_network.base.*``, ``module.`` prefixes allowed) or a state dict of one network alone.
Widths and R(2+1)D mid-planes are read from the checkpoint, so tiny random-initialised
checkpoints of the same architecture load (tests).

Differences from the published code: frames are sampled at 30 fps by our decoder and the
log filterbank is our numpy implementation of the same recipe; seconds are non-overlapping
(the last partial second is dropped unless it is the only one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from lowshot._registry import ENCODERS
from lowshot.errors import DataError
from lowshot.extract import segments
from lowshot.extract.base import AVEncoder, load_checked, read_state_dict, require

SPEC_RATE, SPEC_FILTERS, SPEC_FFT, SPEC_WIN, SPEC_STEP = 48000, 257, 1024, 960, 480


def _mid(c_in: int, c_out: int) -> int:
    """R(2+1)D mid-planes keeping the parameter count of a full 3x3x3 conv (torchvision's rule)."""
    return (c_in * c_out * 27) // (c_in * 9 + 3 * c_out)


def _conv2plus1d(c_in: int, mid: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False), nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True), nn.Conv3d(mid, c_out, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
    )


class Block3d(nn.Module):
    """R(2+1)D basic block: two (2+1)D convs with BN, residual (1x1x1 conv + BN when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, mid: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(_conv2plus1d(c_in, mid, c_out, stride), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(_conv2plus1d(c_out, mid, c_out, 1), nn.BatchNorm3d(c_out))
        self.downsample = (nn.Sequential(nn.Conv3d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm3d(c_out))
                           if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C_in, T, H, W]`` -> ``[N, C_out, T', H', W']``."""
        res = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv2(self.conv1(x)) + res)


class R2Plus1D18(nn.Module):
    """R(2+1)D-18 trunk: ``[N, 3, T, H, W]`` -> ``[N, widths[-1]]`` (global average pool).

    Args:
        stem: (mid, out) channels of the stem (published: 45, 64).
        widths: channels of the four stages (published: 64, 128, 256, 512).
        mids: mid-planes per stage (default: torchvision's rule per stage).
    """

    def __init__(self, stem: tuple[int, int] = (45, 64), widths: tuple[int, ...] = (64, 128, 256, 512),
                 mids: tuple[tuple[int, int], ...] | None = None) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem[0], (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False), nn.BatchNorm3d(stem[0]), nn.ReLU(inplace=True),
            nn.Conv3d(stem[0], stem[1], (3, 1, 1), 1, (1, 0, 0), bias=False), nn.BatchNorm3d(stem[1]), nn.ReLU(inplace=True),
        )
        c = stem[1]
        for i, w in enumerate(widths):
            m = mids[i] if mids else (_mid(c, w), _mid(w, w))
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(Block3d(c, w, m[0], stride), Block3d(w, w, m[1], 1)))
            c = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, T, H, W]`` -> ``[N, 512]``."""
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return x.mean((2, 3, 4))


class Block2d(nn.Module):
    """ResNet basic block (2-D)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                           if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C_in, H, W]`` -> ``[N, C_out, H', W']``."""
        res = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + res)


class ResNet9(nn.Module):
    """ResNet-9 audio trunk (one block per stage): ``[N, 1, F, T]`` -> ``[N, widths[-1]]``."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), stem: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        c = stem
        for i, w in enumerate(widths):
            setattr(self, f"layer{i + 1}", nn.Sequential(Block2d(c, w, 1 if i == 0 else 2)))
            c = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 1, F, T]`` -> ``[N, 512]``."""
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean((2, 3))


def _sub(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix`` (prefix removed), or ``state`` itself when none has it."""
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return sub or state


def video_from_state(state: dict[str, torch.Tensor], path: str | Path) -> R2Plus1D18:
    """R(2+1)D-18 whose widths match ``state`` (SeLaVi ``video_network.base.*`` or bare; each weight's shape gives a width)."""
    s = _sub(state, "video_network.base.")
    require(s, ["stem.0.weight", "stem.3.weight", "layer4.1.conv2.1.weight"], path, "SeLaVi video (R(2+1)D-18)")
    widths = tuple(int(s[f"layer{i}.0.conv1.1.weight"].shape[0]) for i in range(1, 5))
    mids = tuple((int(s[f"layer{i}.0.conv1.0.0.weight"].shape[0]), int(s[f"layer{i}.1.conv1.0.0.weight"].shape[0]))
                 for i in range(1, 5))
    model = R2Plus1D18((int(s["stem.0.weight"].shape[0]), int(s["stem.3.weight"].shape[0])), widths, mids)
    load_checked(model, s, path, "SeLaVi video (R(2+1)D-18)", ignore=("fc.",))
    return model


def audio_from_state(state: dict[str, torch.Tensor], path: str | Path) -> ResNet9:
    """ResNet-9 whose widths match ``state`` (SeLaVi ``audio_network.base.*`` or bare; each weight's shape gives a width)."""
    s = _sub(state, "audio_network.base.")
    require(s, ["conv1.weight", "layer1.0.conv1.weight", "layer4.0.conv2.weight"], path, "SeLaVi audio (ResNet-9)")
    if s["conv1.weight"].shape[1] != 1 or "layer1.1.conv1.weight" in s:
        raise DataError(f"{path}: not a SeLaVi audio (ResNet-9) checkpoint (expects 1 input channel, 1 block per stage)")
    widths = tuple(int(s[f"layer{i}.0.conv1.weight"].shape[0]) for i in range(1, 5))
    model = ResNet9(widths, int(s["conv1.weight"].shape[0]))
    load_checked(model, s, path, "SeLaVi audio (ResNet-9)", ignore=("fc.",))
    return model


def _mel_points(n: int, rate: int) -> np.ndarray:
    """FFT bin of each of the ``n + 2`` mel edges (2595 log10 mel scale, 0 .. rate / 2)."""
    mel = np.linspace(0.0, 2595 * np.log10(1 + rate / 2 / 700.0), n + 2)
    hz = 700 * (10 ** (mel / 2595.0) - 1)
    return np.floor((SPEC_FFT + 1) * hz / rate).astype(int)


def filterbank(n: int = SPEC_FILTERS, rate: int = SPEC_RATE) -> np.ndarray:
    """``[n, FFT / 2 + 1]`` triangular filters on integer FFT bins (empty where edges coincide)."""
    b = _mel_points(n, rate)
    fb = np.zeros((n, SPEC_FFT // 2 + 1))
    for j in range(n):
        for i in range(b[j], b[j + 1]):
            fb[j, i] = (i - b[j]) / (b[j + 1] - b[j])
        for i in range(b[j + 1], b[j + 2]):
            fb[j, i] = (b[j + 2] - i) / (b[j + 2] - b[j + 1])
    return fb


def log_fbank(wav: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """One second of 48 kHz samples -> ``[257, frames]`` float32 log filterbank energies."""
    eps = np.finfo(float).eps
    x = np.append(wav[0], wav[1:] - 0.97 * wav[:-1]).astype(np.float64)
    n = 1 if len(x) <= SPEC_WIN else 1 + int(np.ceil((len(x) - SPEC_WIN) / SPEC_STEP))
    x = np.pad(x, (0, max(0, (n - 1) * SPEC_STEP + SPEC_WIN - len(x))))
    frames = x[np.arange(SPEC_WIN)[None, :] + SPEC_STEP * np.arange(n)[:, None]]
    power = np.abs(np.fft.rfft(frames, SPEC_FFT)) ** 2 / SPEC_FFT
    feat = power @ fb.T
    return np.log(np.where(feat == 0, eps, feat)).T.astype(np.float32)


@ENCODERS.register("av.selavi_video")
class SeLaViVideo(AVEncoder):
    """SeLaVi video features: one 512-d row per second (30 frames at 30 fps).

    Args:
        weights: SeLaVi checkpoint (``AVModel`` state dict) or an R(2+1)D-18 state dict.
        device: torch device.
    """

    modality, kind, step, rate, batch = "video", "selavi", 1.0, 30.0, 2

    def __init__(self, weights: str | Path | None = None, device: str = "cpu") -> None:
        state = read_state_dict(weights, "SeLaVi", "a SeLaVi checkpoint (e.g. selavi_vgg_sound.pth)")
        self.model = video_from_state(state, weights).to(device).eval()  # type: ignore[arg-type]
        self.dim = int(self.model.layer4[1].conv2[1].num_features)
        self.device = device

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """30 fps frames -> ``[N, 30, H, W, 3]`` one-second clips."""
        return segments.clips(stream, 30)

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, 30, H, W, 3]`` uint8 -> ``[n, 512]``."""
        n, t = segs.shape[:2]
        x = (segments.resize_crop(segs.reshape(-1, *segs.shape[2:]), 112, 112) / 255.0 - 0.45) / 0.225
        x = torch.from_numpy(x.astype(np.float32)).reshape(n, t, 112, 112, 3).permute(0, 4, 1, 2, 3)
        return self.model(x.contiguous().to(self.device)).cpu()


@ENCODERS.register("av.selavi_audio")
class SeLaViAudio(AVEncoder):
    """SeLaVi audio features: one 512-d row per second (48 kHz log filterbank, ResNet-9).

    Args:
        weights: SeLaVi checkpoint (``AVModel`` state dict) or a ResNet-9 state dict.
        device: torch device.
    """

    modality, kind, step, rate, batch = "audio", "selavi", 1.0, float(SPEC_RATE), 8

    def __init__(self, weights: str | Path | None = None, device: str = "cpu") -> None:
        state = read_state_dict(weights, "SeLaVi", "a SeLaVi checkpoint (e.g. selavi_vgg_sound.pth)")
        self.model = audio_from_state(state, weights).to(device).eval()  # type: ignore[arg-type]
        self.dim = int(self.model.layer4[0].bn2.num_features)
        self.fb = filterbank()
        self.device = device

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """48 kHz samples -> ``[N, 257, 99]`` log filterbanks of each second."""
        return np.stack([log_fbank(w, self.fb) for w in segments.windows(stream, SPEC_RATE)])

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, 257, 99]`` -> ``[n, 512]``."""
        return self.model(torch.from_numpy(segs).unsqueeze(1).to(self.device)).cpu()
