"""Training cost of one AV-Diff stage-1 epoch at UCF-FSL (or VGGSound-FSL) 5-shot settings (issue 12).

Synthetic UCF-cls-shaped temporal features (VGGish 128 / C3D 4096, the synthetic UCF length
distribution) in memory; the class partition of Table 4.1 (UCF: 30 base, 12 novel classes; the val-unseen videos stand
in for the k-shot novel set, which changes nothing per batch); the
published UCF 5-shot model (``avdiff.ucf_5shot``: L 4, Z 2, T 200, batch 64). Both phases of
stage 1 run through the real trainer (:class:`~lowshot.recipes.gzsl_trainer.MethodTrainer`):

* ``base``: base-phase batches (CE + diffusion loss, everything trains);
* ``full``: full-phase batches (fusion frozen, one batched reverse chain of T steps per batch
  for its novel samples); the share of the time spent generating is measured by timing
  :meth:`AVDiff.generate`.

Usage::

    python benchmarks/avdiff_epoch.py                 # 30 timed batches per phase, extrapolated to 300
    python benchmarks/avdiff_epoch.py --batches 300   # a whole epoch per phase
    python benchmarks/avdiff_epoch.py --dataset VGGSound --size 0.02   # VGGSound-FSL 5-shot model (L 8, T 100)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run(batches: int, size: float, dataset: str = "UCF") -> list[dict[str, Any]]:
    """Time ``batches`` base-phase and full-phase batches; returns one row per phase."""
    from lowshot.config.paper import load_paper_config
    from lowshot.config.schema import from_dict
    from lowshot.data.av.featureset import FeatureSet
    from lowshot.data.av.synth import make_synthetic_benchmark
    from lowshot.methods.av.avdiff import AVDiff, AVDiffConfig
    from lowshot.methods.gfsl import GFSLInputSpec
    from lowshot.protocols.gfsl import start_phase
    from lowshot.recipes.gzsl import input_spec
    from lowshot.recipes.gzsl_config import TrainConfig
    from lowshot.recipes.gzsl_trainer import MethodTrainer

    torch.set_num_threads(1)
    gzsl = make_synthetic_benchmark(preset="cls_temporal", dataset=dataset, seed=0, size=size)
    base_cls, novel_cls = gzsl.split_classes["stage_1_train"], gzsl.split_classes["stage_1_val_unseen"]
    # the per-batch cost does not depend on how many videos a novel class has: the whole
    # val-unseen folder stands in for the k-shot novel training set (no k+1 videos needed)
    views = {
        "base": gzsl,
        "full": replace(
            gzsl,
            splits={**gzsl.splits, "stage_1_train": FeatureSet.concat([gzsl.splits["stage_1_train"], gzsl.splits["stage_1_val_unseen"]])},
            split_classes={**gzsl.split_classes, "stage_1_train": np.union1d(base_cls, novel_cls)},
        ),
    }  # fmt: skip
    raw = load_paper_config(f"avdiff.{dataset.lower()}_5shot")
    cfg = from_dict(AVDiffConfig, raw["model"])
    spec = GFSLInputSpec(**asdict(input_spec(gzsl)), num_classes=gzsl.num_classes)
    torch.manual_seed(0)
    method = AVDiff(cfg, spec)
    gen = {"s": 0.0, "calls": 0, "samples": 0}
    generate = method.generate

    def timed_generate(cond: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        out = generate(cond)
        gen["s"] += time.perf_counter() - t0
        gen["calls"] += 1
        gen["samples"] += cond.shape[0]
        return out

    method.generate = timed_generate  # type: ignore[method-assign]
    rows = []
    full_batches = int(raw["train"]["n_batches"])
    for phase in ("base", "full"):
        view = views[phase]
        start_phase(method, view, phase, novel_cls)
        train = TrainConfig(batch_size=int(raw["train"]["batch_size"]), n_batches=2, lr=float(raw["train"]["lr"]), progress=False)
        trainer = MethodTrainer(method, view, 1, train, seed=0, device=torch.device("cpu"))
        trainer.train_epoch(0)  # warm-up
        trainer.config = TrainConfig(batch_size=train.batch_size, n_batches=batches, lr=train.lr, progress=False)
        gen.update(s=0.0, calls=0, samples=0)
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train_epoch(1)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({
            "phase": phase, "batches_timed": batches, "batch_size": train.batch_size,
            "ms_per_batch": 1000 * seconds / batches, "s_per_epoch": seconds / batches * full_batches,
            "cpu_s_per_epoch": cpu / batches * full_batches, "generation_share": gen["s"] / seconds,
            "reverse_chains": gen["calls"], "generated_per_batch": gen["samples"] / batches,
            "diffusion_steps": cfg.diffusion_steps, "peak_rss_mb": _peak_rss_mb(), "load_average": list(os.getloadavg()),
        })  # fmt: skip
    return rows


def main() -> None:
    """Print the rows as a markdown table (and JSON with ``--json``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=30, help="timed batches per phase (300 = one epoch)")
    p.add_argument("--size", type=float, default=0.1, help="synthetic data size (fraction of UCF)")
    p.add_argument("--dataset", default="UCF", help="UCF | ActivityNet | VGGSound (its 5-shot setting)")
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args()
    rows = run(args.batches, args.size, args.dataset)
    print("| phase | ms/batch | s/epoch (300 batches) | CPU s/epoch | generation share | chains | generated/batch | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['phase']} | {r['ms_per_batch']:.0f} | {r['s_per_epoch']:.0f} | {r['cpu_s_per_epoch']:.0f} | "
              f"{100 * r['generation_share']:.0f} % | {r['reverse_chains']} | {r['generated_per_batch']:.1f} | {r['peak_rss_mb']:.0f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
