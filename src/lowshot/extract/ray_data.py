"""Extraction as a Ray Data pipeline (``lowshot extract ... --ray [ADDRESS|local]``; extra ``scale``).

Three stages over the videos still missing from the cache:

1. **decode** (``map_batches`` of a function, CPU tasks): PyAV decodes each video's audio and
   frames at the encoders' rates; an unusable video becomes a row with its reason;
2. **encode** (``map_batches`` of :class:`_EncodeActor`, a pool of ``workers`` actors, each
   holding the encoders once, ``num_gpus=1`` each when the cluster has GPUs): runs the encoders;
3. **write** (``map_batches`` with ``batch_size=shard_size``): each batch of at most
   ``shard_size`` videos becomes one safetensors shard of the cache
   (:func:`lowshot.extract.cache.write_shard`, atomic, named by a hash of its videos, so a
   retried task rewrites the same file).

A killed or preempted job resumes at shard granularity (the videos of unfinished shards are
submitted again). The final assembly is the same as the in-process path
(:func:`lowshot.extract.pipeline.extract_all` indexes the cache, then ``write_output`` streams it
into the layout or the safe format). On a cluster, ``OUT`` and the input videos must be on a
file system every node sees (NFS, a mounted bucket).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowshot.extract.base import AVEncoder
from lowshot.extract.cache import write_shard
from lowshot.extract.media import MediaError, decode_audio, decode_video
from lowshot.utils.distributed import ray_connect


def _decode(batch: dict[str, np.ndarray], rates: dict[str, float]) -> dict[str, np.ndarray]:
    """Decode stage: rows ``path, id`` -> ``id, reason, detail`` + one object column per modality."""
    n = len(batch["path"])
    out: dict[str, Any] = {"id": batch["id"], "reason": np.full(n, "", object), "detail": np.full(n, "", object)}
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
    """Encode stage: builds the encoders once per actor; features replace the decoded streams."""

    def __init__(self, build: Callable[[], dict[str, AVEncoder]]) -> None:
        import torch

        torch.set_num_threads(1)
        self.encoders = build()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(batch)
        for m, enc in self.encoders.items():
            col = np.empty(len(batch["id"]), dtype=object)
            for i, stream in enumerate(batch[m]):
                col[i] = np.zeros((0, enc.dim), np.float32) if batch["reason"][i] else enc.encode(stream).astype(np.float32)
            out[m] = col
        return out


def _write(batch: dict[str, np.ndarray], folder: str, modalities: Sequence[str]) -> dict[str, np.ndarray]:
    """Write stage: one shard of the batch's videos (features, or the reason a video is unusable)."""
    rows = [(str(vid), (str(batch["reason"][i]), str(batch["detail"][i])) if batch["reason"][i]
             else {m: batch[m][i] for m in modalities}) for i, vid in enumerate(batch["id"])]
    write_shard(Path(folder), rows)
    return {"videos": np.array([len(rows)])}


def extract_to_cache(
    todo: Sequence[tuple[Path, str]],
    folder: Path,
    encoders: dict[str, AVEncoder],
    build: Callable[[], dict[str, AVEncoder]],
    address: str = "local",
    workers: int = 1,
    shard_size: int = 256,
    on_done: Callable[[int], None] | None = None,
) -> None:
    """Run the Ray Data pipeline over ``todo`` (video path, cache id) pairs into the cache ``folder``.

    Args:
        encoders: the driver's encoders (only their ``rate`` is read, for the decode stage).
        build: picklable callable that builds the encoders inside each actor.
        address: Ray cluster address, or ``local``.
        workers: encoder actors (one GPU each when the cluster has GPUs).
        shard_size: most videos per shard file.
        on_done: called with the number of videos of each written shard (progress).
    """
    if not todo:
        return
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    ray = ray_connect(address, max(workers, 1) + 1)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    rates = {m: float(enc.rate) for m, enc in encoders.items()}
    rows = [{"path": str(p), "id": vid} for p, vid in todo]
    ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * max(workers, 1)))
    ds = ds.map_batches(functools.partial(_decode, rates=rates), batch_size=1, batch_format="numpy")
    ds = ds.map_batches(_EncodeActor, fn_constructor_args=(build,), batch_size=1, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=max(workers, 1)), num_gpus=gpus)  # fmt: skip
    ds = ds.map_batches(functools.partial(_write, folder=str(folder), modalities=tuple(encoders)),
                        batch_size=shard_size, batch_format="numpy")
    for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
        if on_done is not None:
            on_done(int(batch["videos"].sum()))
