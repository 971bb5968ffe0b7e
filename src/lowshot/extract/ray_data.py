"""Extraction as a Ray Data pipeline (``lowshot extract ... --ray [ADDRESS|local]``; extra ``scale``).

Two stages over the videos still missing from the cache:

1. **decode** (``map_batches`` of a function, CPU tasks): PyAV decodes each video's audio and
   frames at the encoders' rates; an unusable video becomes a row with its reason;
2. **encode** (``map_batches`` of :class:`_EncodeActor`, a pool of ``workers`` actors, each
   holding the encoders once, ``num_gpus=1`` each when the cluster has GPUs): runs the encoders
   and writes the video's ``.npz`` into the shared cache atomically (features or the reason).

The cache is the output shard store (one atomic file per video, so a killed or preempted job
resumes where it stopped and a retried task rewrites the same file); the final assembly is the
same as the in-process path (:func:`lowshot.extract.pipeline.extract_all` reads the cache, then
``write_output`` builds the layout or the safe format). On a cluster, ``OUT`` and the input
videos must be on a file system every node sees (NFS, a mounted bucket).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowshot.extract.base import AVEncoder
from lowshot.extract.media import MediaError, decode_audio, decode_video
from lowshot.utils.distributed import ray_connect
from lowshot.utils.io import atomic_path


def _decode(batch: dict[str, np.ndarray], rates: dict[str, float]) -> dict[str, np.ndarray]:
    """Decode stage: rows ``path`` -> ``path, file, reason, detail`` + one object column per modality."""
    n = len(batch["path"])
    out: dict[str, Any] = {"file": batch["file"], "reason": np.full(n, "", object), "detail": np.full(n, "", object)}
    streams = {m: np.empty(n, dtype=object) for m in rates}
    for i, path in enumerate(batch["path"]):
        try:
            for m, rate in rates.items():
                p = Path(path)
                streams[m][i] = decode_audio(p, int(rate)) if m == "audio" else decode_video(p, rate)
        except MediaError as err:
            out["reason"][i], out["detail"][i] = err.reason, err.detail
            for m in rates:  # an empty stream of the right rank (a ragged tensor column needs one)
                streams[m][i] = np.zeros((0,) if m == "audio" else (0, 0, 0, 3), np.float32 if m == "audio" else np.uint8)
    return {**out, **streams}


class _EncodeActor:
    """Encode stage: builds the encoders once per actor; writes each row's ``.npz`` (the output shard)."""

    def __init__(self, build: Callable[[], dict[str, AVEncoder]]) -> None:
        import torch

        torch.set_num_threads(1)
        self.encoders = build()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for i, file in enumerate(batch["file"]):
            if batch["reason"][i]:
                payload = {"reason": np.array(str(batch["reason"][i])), "detail": np.array(str(batch["detail"][i]))}
            else:
                payload = {m: enc.encode(batch[m][i]).astype(np.float32) for m, enc in self.encoders.items()}
            with atomic_path(Path(file)) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **payload)
        return {"file": batch["file"]}


def extract_to_cache(
    todo: Sequence[tuple[Path, Path]],
    encoders: dict[str, AVEncoder],
    build: Callable[[], dict[str, AVEncoder]],
    address: str = "local",
    workers: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> None:
    """Run the two-stage Ray Data pipeline over ``todo`` (video path, cache file) pairs.

    Args:
        encoders: the driver's encoders (only their ``rate`` is read, for the decode stage).
        build: picklable callable that builds the encoders inside each actor.
        address: Ray cluster address, or ``local``.
        workers: encoder actors (one GPU each when the cluster has GPUs).
        on_done: called with the number of videos of each finished block (progress).
    """
    if not todo:
        return
    ray = ray_connect(address, max(workers, 1) + 1)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    rates = {m: float(enc.rate) for m, enc in encoders.items()}
    rows = [{"path": str(p), "file": str(f)} for p, f in todo]
    ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * max(workers, 1)))
    ds = ds.map_batches(functools.partial(_decode, rates=rates), batch_size=1, batch_format="numpy")
    ds = ds.map_batches(_EncodeActor, fn_constructor_args=(build,), batch_size=1, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=max(workers, 1)), num_gpus=gpus)  # fmt: skip
    for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
        if on_done is not None:
            on_done(len(batch["file"]))
