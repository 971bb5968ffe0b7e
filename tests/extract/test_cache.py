"""The extraction cache: per-video files and Ray shards read alike; the assembly streams (bounded memory)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np

from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.extract import cache as vcache
from lowshot.extract import pipeline
from lowshot.extract.labels import class_embeddings, fit_slot

ENC = {m: SimpleNamespace(kind=f"toy_{m}", dim=64, step=1.0, rate=1.0) for m in ("audio", "video")}
STAGE_CLASSES = {"stage_1_train": ["c0", "c1"], "stage_1_val_seen": ["c0", "c1"], "stage_1_val_unseen": ["u0"],
                 "stage_2_test_seen": ["c0", "c1", "u0"], "stage_2_test_unseen": ["u1"]}


def _items(per_class: int) -> list[pipeline.VideoItem]:
    return [pipeline.VideoItem(Path(f"/none/{s}/{c}/{k}.mp4"), s, c, f"{c}/{s}_{k}")
            for s, cs in STAGE_CLASSES.items() for c in cs for k in range(per_class)]


def _feats(rng: np.random.Generator, t: int) -> dict[str, np.ndarray]:
    return {m: rng.standard_normal((t, 64)).astype(np.float32) for m in ("audio", "video")}


def test_shards_and_npz_files_are_one_cache(tmp_path: Path) -> None:
    items = _items(1)
    rng = np.random.default_rng(0)
    truth = {i.key: _feats(rng, 1 + k % 3) for k, i in enumerate(items)}
    bad = items[2]
    rows = [(vcache.video_id(i.key), ("unreadable", "truncated") if i is bad else truth[i.key]) for i in items[:5]]
    shard = vcache.write_shard(tmp_path, rows)
    assert vcache.write_shard(tmp_path, rows) == shard  # a retried task rewrites the same file
    for i in items[5:]:
        vcache.write_npz(pipeline.cache_file(tmp_path, i), truth[i.key])
    encoded: list[str] = []
    ext = pipeline.extract_all(items, ENC, tmp_path, progress=False, on_video=lambda i: encoded.append(i.key))  # type: ignore[arg-type]
    assert encoded == []  # every video is in the cache (shard or file): nothing is encoded again
    assert [s["reason"] for s in ext.skipped] == ["unreadable"] and bad.key not in ext.features
    assert sorted(ext.features) == sorted(k for k in truth if k != bad.key)
    for k, f in ext.features.items():
        for m in ("audio", "video"):
            np.testing.assert_array_equal(f[m], truth[k][m])
            assert ext.rows(k, m) == len(truth[k][m])


def test_assembly_holds_one_video_at_a_time(tmp_path: Path) -> None:
    items = _items(12)
    rng = np.random.default_rng(0)
    cache = tmp_path / "cache"
    cache.mkdir()
    for k, i in enumerate(items):
        vcache.write_npz(pipeline.cache_file(cache, i), _feats(rng, 50 + k % 5))
    total = sum(f.stat().st_size for f in cache.iterdir())  # ~ every feature once (uncompressed npz)
    text = {"clip": fit_slot(class_embeddings(["c0", "c1", "u0", "u1"], "hash", dim=16), "clip")}
    probe = next(i for i in items if i.stage == "stage_2_test_unseen")
    for layout, safe in (("temporal", True), ("averaged", False)):
        tracemalloc.start()
        ext = pipeline.extract_all(items, ENC, cache, progress=False)  # type: ignore[arg-type]
        final = pipeline.write_output(tmp_path / "out", "UCF", f"f_{layout}", layout, safe, items, ext,
                                      ENC, {}, text)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < total / 4, (layout, peak, total)  # holding every feature at once would need > total
        want = ext.features[probe.key]["audio"]
        if safe:
            split = load_gzsl_benchmark(tmp_path / "out", "UCF", final.name, "main", text=("clip",)).splits[probe.stage]
            got = np.asarray(split.audio[[str(v) for v in split.video_ids].index(probe.vid)])
            np.testing.assert_array_equal(got, want)
        else:
            with h5py.File(final / "audio" / probe.stage / f"{probe.label}.h5") as fh:
                ids = [v.decode() for v in fh["video_urls"][()]]
                np.testing.assert_allclose(fh["data"][ids.index(probe.vid)], want.mean(0), rtol=1e-6)
