"""Peak memory of the ``lowshot extract`` assembly (cache -> output layout) for a synthetic cache.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/extract_assembly.py [--videos 2000] [--steps 10]
        [--dim 1280] [--layouts safe-temporal averaged] [--src OTHER/src]

Writes ``--videos`` cached videos (``[steps, dim]`` float32 audio and video each, random values,
spread over the five stage folders and 20 classes) into a temporary cache with the same
per-video ``.npz`` files ``lowshot extract`` writes, then, in a fresh process per layout, runs
``extract_all`` (nothing left to encode: it only reads the cache) and ``write_output``, and prints
the peak resident memory (``ru_maxrss``) of that process above its resident memory before the
assembly. ``--src`` runs the assembly with another checkout's code (e.g. main's, to compare).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

CLASSES = 20


def _items(videos: int) -> list:
    from lowshot.data.av.featureset import STAGES
    from lowshot.extract.pipeline import VideoItem

    return [VideoItem(Path(f"/synthetic/{k}.mp4"), STAGES[k % len(STAGES)], f"class{(k // len(STAGES)) % CLASSES:02d}",
                      f"class{(k // len(STAGES)) % CLASSES:02d}/v{k}") for k in range(videos)]


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(cache: Path, out: Path, videos: int, dim: int, layout: str) -> None:
    """Assemble ``layout`` from ``cache`` into ``out``; print JSON with the memory numbers."""
    from lowshot.extract import pipeline

    items = _items(videos)
    enc = {m: SimpleNamespace(kind=f"synthetic_{m}", dim=dim, step=1.0, rate=1.0) for m in ("audio", "video")}
    before = _rss_mib()
    t0 = time.perf_counter()
    ext = pipeline.extract_all(items, enc, cache, progress=False)  # type: ignore[arg-type]
    safe, kind = layout.startswith("safe"), layout.split("-")[-1]
    pipeline.write_output(out, "UCF", f"bench_{layout}", kind, safe, items, ext, enc, {}, {})  # type: ignore[arg-type]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"layout": layout, "rss_before_mib": round(before, 1), "peak_mib": round(peak, 1),
                      "assembly_mib": round(peak - before, 1), "seconds": round(time.perf_counter() - t0, 1)}))


def main() -> None:
    """Write the cache, run one child per layout, print a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=10, help="time steps per video and modality")
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--layouts", nargs="+", default=["safe-temporal", "safe-vector", "averaged"],
                    help="safe-temporal | safe-vector | safe-averaged | averaged | temporal | vector")
    ap.add_argument("--src", help="run the assembly with this src folder's lowshot (default: the importable one)")
    ap.add_argument("--child", nargs=2, metavar=("CACHE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.videos, args.dim, args.layouts[0])
        return
    from lowshot.extract.pipeline import cache_file

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="lowshot-assembly-") as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        for item in _items(args.videos):
            feats = {m: rng.standard_normal((args.steps, args.dim)).astype(np.float32) for m in ("audio", "video")}
            np.savez(cache_file(cache, item), **feats)
        cache_mib = sum(f.stat().st_size for f in cache.iterdir()) / 2**20
        env = {**os.environ, "PYTHONPATH": str(Path(args.src).resolve())} if args.src else dict(os.environ)
        print(f"{args.videos} videos x 2 modalities x [{args.steps}, {args.dim}] float32: cache {cache_mib:.0f} MiB"
              + (f" (code: {args.src})" if args.src else ""))
        print("| layout | RSS before (MiB) | peak RSS (MiB) | assembly (MiB) | s |\n|---|---|---|---|---|")
        for layout in args.layouts:
            cmd = [sys.executable, __file__, "--videos", str(args.videos), "--dim", str(args.dim),
                   "--layouts", layout, "--child", str(cache), str(Path(tmp) / f"out_{layout}")]
            r = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"| {layout} | {r['rss_before_mib']} | {r['peak_mib']} | {r['assembly_mib']} | {r['seconds']} |")


if __name__ == "__main__":
    main()
