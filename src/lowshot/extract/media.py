"""Decode audio and video with PyAV (any container FFmpeg reads) into fixed-rate arrays.

* :func:`decode_video`: RGB frames resampled to a target frame rate (nearest previous frame:
  a frame is repeated when the source is slower, dropped when it is faster), scaled so the
  short side is ``short_side`` pixels (keeps memory at ~0.2 MB a frame).
* :func:`decode_audio`: mono float32 samples at a target rate (FFmpeg's resampler mixes
  channels down and resamples).

Every failure is a :class:`MediaError` with a short ``reason`` (``unreadable``, ``no_video``,
``no_audio``, ``empty``, ``corrupt``) so that a folder extraction can report and skip it.
PyAV is an optional dependency (extra ``extract``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lowshot.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ogv")


class MediaError(DataError):
    """A video that cannot be used: ``reason`` is a short machine-readable cause."""

    def __init__(self, path: Path | str, reason: str, detail: str = "") -> None:
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


def _av():  # noqa: ANN202 - the module
    try:
        import av
    except ImportError:  # pragma: no cover - optional extra
        raise DataError("decoding media needs PyAV: pip install 'lowshot[extract]'") from None
    return av


def _open(path: Path):  # noqa: ANN202 - an av container
    av = _av()
    if not Path(path).is_file():
        raise MediaError(path, "unreadable", "no such file")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise MediaError(path, "unreadable", str(err)) from None


def probe(path: Path) -> dict[str, float | bool]:
    """``{"duration": seconds, "audio": bool, "video": bool}`` of a media file."""
    with _open(path) as c:
        dur = float(c.duration / 1_000_000) if c.duration else 0.0
        return {"duration": dur, "audio": bool(c.streams.audio), "video": bool(c.streams.video)}


@contextmanager
def _stream(path: Path, kind: str) -> Iterator[tuple[Any, Any]]:
    """(container, first ``kind`` stream); MediaError when absent, FFmpeg errors -> ``corrupt``."""
    av = _av()
    with _open(path) as c:
        streams = c.streams.video if kind == "video" else c.streams.audio
        if not streams:
            raise MediaError(path, f"no_{kind}")
        try:
            yield c, streams[0]
        except (av.error.FFmpegError, ValueError) as err:
            raise MediaError(path, "corrupt", str(err)) from None


def decode_video(path: Path, fps: float, short_side: int = 256) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 RGB frames at ``fps`` (T = floor(duration * fps), at least 1).

    Raises:
        MediaError: unreadable, no video stream, decoding error, or no frame at all.
    """
    frames: list[np.ndarray] = []
    with _stream(path, "video") as (c, stream):
        stream.thread_type = "AUTO"
        next_t, t, size = 0.0, 0.0, None
        last = None  # [av frame, its rgb array or None until first used]

        def take() -> None:
            nonlocal next_t
            if last[1] is None:  # type: ignore[index]
                last[1] = last[0].to_ndarray(width=size[0], height=size[1], format="rgb24")  # type: ignore[index]
            frames.append(last[1])  # type: ignore[index]
            next_t += 1.0 / fps

        for frame in c.decode(stream):
            if frame.time is None:
                continue
            if size is None:
                scale = short_side / min(frame.width, frame.height)
                size = (max(2, round(frame.width * scale)), max(2, round(frame.height * scale)))
            t = float(frame.time)
            while last is not None and next_t < t - 1e-6:  # targets before this frame: previous frame
                take()
            last = [frame, None]
        rate = float(stream.average_rate or fps)
        while last is not None and next_t < t + 1.0 / rate - 1e-6:  # up to the end of the last frame
            take()
    if not frames:
        raise MediaError(path, "empty", "no decodable video frame")
    return np.stack(frames)


def decode_audio(path: Path, sample_rate: int) -> np.ndarray:
    """``[S]`` float32 mono samples at ``sample_rate``.

    Raises:
        MediaError: unreadable, no audio stream, decoding error, or no sample at all.
    """
    chunks: list[np.ndarray] = []
    with _stream(path, "audio") as (c, stream):
        resampler = _av().AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for frame in c.decode(stream):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if audio.size == 0:
        raise MediaError(path, "empty", "no decodable audio sample")
    return audio.astype(np.float32, copy=False)


def write_test_video(
    path: Path,
    seconds: float = 1.0,
    fps: int = 25,
    size: tuple[int, int] = (64, 48),
    tone_hz: float | None = 440.0,
    sample_rate: int = 16000,
    colour: tuple[int, int, int] = (200, 40, 40),
    images: list[np.ndarray] | None = None,
    audio: np.ndarray | None = None,
) -> Path:
    """Encode a small MP4 (H.264 video + AAC audio) for tests and demos.

    Args:
        path: output ``.mp4``.
        seconds: duration.
        fps: frame rate.
        size: (width, height), even numbers.
        tone_hz: sine tone of the audio track; None and no ``audio`` -> no audio stream.
        sample_rate: audio rate.
        colour: RGB of the moving square drawn on a dark background (when ``images`` is None).
        images: optional ``[H, W, 3]`` uint8 frames shown in turn over the clip (each resized and
            centre-cropped to ``size``), instead of the square.
        audio: optional ``[S]`` float32 mono samples in [-1, 1] (instead of the tone).
    """
    av = _av()
    w, h = size
    n = max(1, int(round(seconds * fps)))
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        as_ = None
        if audio is None and tone_hz is not None:
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            audio = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
        if audio is not None:
            as_ = c.add_stream("aac", rate=sample_rate)
            as_.layout = "mono"
        for i in range(n):
            if images is not None:
                img = np.ascontiguousarray(_fit(images[i * len(images) // n], w, h))
            else:
                img = np.full((h, w, 3), 20, np.uint8)
                x = (i * 3) % max(1, w - 16)
                img[h // 4 : h // 4 + 16, x : x + 16] = colour
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if as_ is not None and audio is not None:
            step = 1024
            for k, start in enumerate(range(0, len(audio), step)):
                chunk = np.zeros((1, step), np.float32)
                part = audio[start : start + step]
                chunk[0, : len(part)] = part
                fr = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                fr.sample_rate, fr.pts = sample_rate, k * step
                for p in as_.encode(fr):
                    c.mux(p)
            for p in as_.encode():
                c.mux(p)
    return Path(path)


def _fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize ``img`` to at least (w, h) keeping the aspect ratio, then crop to (w, h)."""
    from PIL import Image

    scale = max(w / img.shape[1], h / img.shape[0])
    size = (max(w, round(img.shape[1] * scale)), max(h, round(img.shape[0] * scale)))
    out = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
    y0, x0 = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[y0 : y0 + h, x0 : x0 + w]
