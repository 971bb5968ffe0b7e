"""Resampling and segmentation of decoded streams as each published feature set does (pure numpy).

* SeLaVi / EfficientNet frames: one step per second (:func:`per_second`);
* VGGish: 16 kHz log-mel (25 ms Hann window, 10 ms hop, 512-point FFT, 64 HTK-mel bands
  125-7500 Hz, ``log(mel + 0.01)``) cut into non-overlapping 0.96 s examples of 96 x 64
  (:func:`vggish_examples`);
* C3D / S3D: non-overlapping 16-frame clips (C3D at 25 fps: 0.64 s a step) (:func:`clips`);
* CLIP: the middle frame (:func:`middle`); CLAP: a centred crop of 10 s (:func:`centre_crop`).

Difference from the published pipelines: a stream shorter than one segment is zero-padded
(audio) or frame-repeated (video) to one segment, so that every decodable video gets at least
one step; the published scripts drop such videos.
"""

from __future__ import annotations

import numpy as np

VGGISH_RATE = 16000
VGGISH_WINDOW = 400  # 25 ms
VGGISH_HOP = 160  # 10 ms
VGGISH_FFT = 512
VGGISH_MELS = 64
VGGISH_FRAMES = 96  # 0.96 s
MEL_LOW, MEL_HIGH = 125.0, 7500.0


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix(
    n_fft: int = VGGISH_FFT, rate: int = VGGISH_RATE, n_mels: int = VGGISH_MELS,
    low: float = MEL_LOW, high: float = MEL_HIGH,
) -> np.ndarray:
    """``[n_fft // 2 + 1, n_mels]`` triangular HTK-mel weights (DC bin zeroed, as VGGish)."""
    bins = _hz_to_mel(np.linspace(0.0, rate / 2.0, n_fft // 2 + 1))
    edges = np.linspace(_hz_to_mel(low), _hz_to_mel(high), n_mels + 2)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    w = np.maximum(0.0, np.minimum((bins[:, None] - lo) / (mid - lo), (hi - bins[:, None]) / (hi - mid)))
    w[0, :] = 0.0
    return w


def log_mel(audio: np.ndarray, rate: int = VGGISH_RATE) -> np.ndarray:
    """``[S]`` samples -> ``[F, 64]`` log-mel frames (10 ms hop, no centring)."""
    if len(audio) < VGGISH_WINDOW:
        audio = np.pad(audio, (0, VGGISH_WINDOW - len(audio)))
    n = 1 + (len(audio) - VGGISH_WINDOW) // VGGISH_HOP
    idx = np.arange(VGGISH_WINDOW)[None, :] + VGGISH_HOP * np.arange(n)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(VGGISH_WINDOW) / VGGISH_WINDOW)  # periodic Hann
    spec = np.abs(np.fft.rfft(audio[idx] * window, n=VGGISH_FFT))
    return np.log(spec @ mel_matrix(rate=rate) + 0.01).astype(np.float32)


def vggish_examples(audio: np.ndarray) -> np.ndarray:
    """16 kHz ``[S]`` samples -> ``[N, 96, 64]`` non-overlapping 0.96 s log-mel examples (N >= 1)."""
    mel = log_mel(audio)
    if len(mel) < VGGISH_FRAMES:
        mel = np.concatenate([mel, np.full((VGGISH_FRAMES - len(mel), VGGISH_MELS), np.log(0.01), np.float32)])
    n = len(mel) // VGGISH_FRAMES
    return mel[: n * VGGISH_FRAMES].reshape(n, VGGISH_FRAMES, VGGISH_MELS)


def windows(audio: np.ndarray, length: int) -> np.ndarray:
    """``[S]`` -> ``[N, length]`` non-overlapping windows (N >= 1; the last partial one dropped
    unless it is the only one, which is zero-padded)."""
    if len(audio) < length:
        audio = np.pad(audio, (0, length - len(audio)))
    n = len(audio) // length
    return audio[: n * length].reshape(n, length)


def clips(frames: np.ndarray, length: int = 16) -> np.ndarray:
    """``[T, H, W, 3]`` -> ``[N, length, H, W, 3]`` non-overlapping clips (N >= 1; a video shorter
    than one clip repeats its last frame)."""
    if len(frames) < length:
        frames = np.concatenate([frames, np.repeat(frames[-1:], length - len(frames), axis=0)])
    n = len(frames) // length
    return frames[: n * length].reshape(n, length, *frames.shape[1:])


def per_second(frames: np.ndarray, fps: float) -> np.ndarray:
    """Frames decoded at ``fps`` -> ``[N, H, W, 3]``: the middle frame of every whole second."""
    step = max(1, int(round(fps)))
    n = max(1, len(frames) // step)
    return frames[np.minimum(np.arange(n) * step + step // 2, len(frames) - 1)]


def middle(frames: np.ndarray) -> np.ndarray:
    """``[T, ...]`` -> ``[1, ...]``: the middle frame."""
    return frames[len(frames) // 2][None]


def centre_crop(audio: np.ndarray, length: int) -> np.ndarray:
    """``[S]`` -> ``[length]``: the centred crop (zero-padded at the end when shorter)."""
    if len(audio) <= length:
        return np.pad(audio, (0, length - len(audio)))
    start = (len(audio) - length) // 2
    return audio[start : start + length]


def resize_crop(images: np.ndarray, short: int, crop: int | tuple[int, int]) -> np.ndarray:
    """``[N, H, W, 3]`` uint8 -> ``[N, ch, cw, 3]`` float32 in [0, 255]: bilinear resize of the
    short side to ``short`` (or to exactly (h, w) when ``short`` is a pair), centre crop."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    size = (short, round(w * short / h)) if h <= w else (round(h * short / w), short)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    y0, x0 = (x.shape[-2] - ch) // 2, (x.shape[-1] - cw) // 2
    return x[..., y0 : y0 + ch, x0 : x0 + cw].permute(0, 2, 3, 1).numpy()
