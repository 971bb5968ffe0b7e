"""Wall time and peak memory of the full two-stage ClipClap-GZSL protocol, and of the beta search.

Usage (figures in docs/benchmarks.md)::

    python benchmarks/gzsl_clipclap.py protocol --dataset UCF --size 1.0
    python benchmarks/gzsl_clipclap.py protocol --dataset VGGSound --size 1.0
    python benchmarks/gzsl_clipclap.py beta --samples 10000 --classes 309

``protocol`` generates a synthetic benchmark with ClipClap's feature sizes (CLAP 1024 +
CLIP 512, label embeddings 512 + 1024) and the real video counts times ``--size``, writes it
in the released layout, reads it back and runs the published UCF setting (``clipclap.ucf``:
20 epochs x 300 batches of 64 in stage 1, best+1 epochs in stage 2) unless overridden.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_protocol(args: argparse.Namespace) -> None:
    from lowshot.config.paper import load_paper_config
    from lowshot.protocols import gzsl as protocol_module
    from lowshot.recipes.gzsl import run_gzsl

    overrides = [
        "data.synthetic=clipclap", f"data.dataset={args.dataset}", f"data.synthetic_size={args.size}",
        "train.progress=false", *args.overrides,
    ]
    config = load_paper_config(args.setting, overrides)
    timings: dict[str, float] = {}
    original_stage1, original_stage2 = protocol_module.TwoStageProtocol._stage1, protocol_module.TwoStageProtocol._stage2

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            timings[name] = time.perf_counter() - t
            return out
        return wrapper

    protocol_module.TwoStageProtocol._stage1 = timed("stage1", original_stage1)
    protocol_module.TwoStageProtocol._stage2 = timed("stage2", original_stage2)
    with tempfile.TemporaryDirectory() as tmp:
        from lowshot.data.av.synth import write_synthetic

        t0 = time.perf_counter()
        write_synthetic(Path(tmp) / "data", preset="clipclap", dataset=args.dataset, seed=0, size=args.size)
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = run_gzsl(config, Path(tmp))
        total = time.perf_counter() - t0
    first = str(summary.seeds[0])
    seed = {**summary.per_seed[first], **summary.extra["selected"][first]}
    print(f"dataset={args.dataset} size={args.size} setting={args.setting} overrides={args.overrides}")
    print(f"generate+write synthetic data: {t_gen:.1f} s")
    print(f"load + stage 1 + stage 2 + test: {total:.1f} s  (stage 1 {timings['stage1']:.1f} s, "
          f"stage 2 {timings['stage2']:.1f} s for {seed['best_epoch'] + 1} epochs)")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    print("test (x100):", {k: round(seed[k], 2) for k in ("S", "U", "HM", "ZSL")}, f"beta={seed['beta']:.3f}")


def bench_beta(args: argparse.Namespace) -> None:
    import torch

    from lowshot.protocols.calibration import CalibratedStacking, beta_grid

    rng = np.random.default_rng(0)
    seen, unseen = np.arange(0, args.classes - 64), np.arange(args.classes - 64, args.classes)
    labels = rng.integers(0, args.classes, args.samples)
    scores = rng.normal(size=(args.samples, args.classes)).astype(np.float32)
    for grid in ((0, 3, 16), (0, 5, 76)):
        betas = beta_grid(*grid)
        t0 = time.perf_counter()
        reps = 10
        for _ in range(reps):
            CalibratedStacking(betas).fit(scores, labels, seen, unseen)
        t = (time.perf_counter() - t0) / reps
        print(f"beta search, {args.samples} samples x {args.classes} classes, grid {grid}: {1000 * t:.1f} ms")
    # for scale: the distances themselves (cdist of 64-d embeddings) for the same samples
    a, b = torch.randn(args.samples, 64), torch.randn(args.classes, 64)
    t0 = time.perf_counter()
    for _ in range(10):
        torch.cdist(a, b)
    print(f"cdist of the same samples (for scale): {100 * (time.perf_counter() - t0):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("protocol")
    p.add_argument("--dataset", default="UCF")
    p.add_argument("--size", type=float, default=1.0)
    p.add_argument("--setting", default="clipclap.ucf")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=bench_protocol)
    p = sub.add_parser("beta")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--classes", type=int, default=309)
    p.set_defaults(func=bench_beta)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
