"""Training cost of one AV-Diff stage-1 epoch at UCF-FSL (or VGGSound-FSL) 5-shot settings (issue 12).

Synthetic UCF-cls-shaped temporal features (VGGish 128 / C3D 4096, the synthetic UCF length
distribution) in memory; the class partition of Table 4.1 (UCF: 30 base, 12 novel classes; the val-unseen videos stand
in for the k-shot novel set, which changes nothing per batch); the
published UCF 5-shot model (``avdiff.ucf_5shot``: L 4, Z 2, T 200, batch 64). Both phases of
stage 1 run through the real trainer (:class:`~lowshot.recipes.gzsl_trainer.MethodTrainer`):

* ``base``: base-phase batches (CE + diffusion loss, everything trains);
* ``full``: full-phase batches (per configured batch a base step and a novel step of ``B`` each, fusion
  frozen, one batched reverse chain of T steps with its backward for the ``B`` novel samples); the share of the time spent generating is measured by timing
  :meth:`AVDiff.generate`.

The compute floor is the analytic matmul FLOPs of a batch (:func:`model_gflop_per_batch`)
divided by the measured single-thread GEMM throughput per CPU second (:func:`matmul_gflops`);
compare it with the CPU seconds per epoch.

Usage::

    python benchmarks/avdiff_epoch.py                 # 30 timed batches per phase, extrapolated to 300
    python benchmarks/avdiff_epoch.py --batches 300   # a whole epoch per phase
    python benchmarks/avdiff_epoch.py --dataset VGGSound --size 0.02   # VGGSound-FSL 5-shot model (L 8, T 100)

The whole 3-draw protocol (:func:`protocol_seconds`) is **computed**, not run: the measured
base-phase epoch, full-phase epoch and evaluation seconds per video (the model's evaluation
forward on the synthetic stage-1 validation videos, cropped at ``eval_maxlen``), times the
setting's epoch counts and the Table 4.1 validation / test video counts.
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


def matmul_gflops(seconds: float = 1.0) -> float:
    """Measured single-thread float32 GEMM throughput (the shapes of the C3D encoder) in GFLOP
    per CPU second (process time, so that other processes on a shared machine do not count)."""
    a, b = torch.randn(704, 4096), torch.randn(4096, 512)
    a @ b  # warm-up
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 704 * 4096 * 512 * n / (time.process_time() - t0) / 1e9


def model_gflop_per_batch(cfg: Any, spec: Any, batch: int, t_a: float, t_v: float, novel: float, phase: str) -> float:
    """Analytic matmul GFLOP of one training batch (backward = 2 x forward for trained parts).

    Args:
        cfg: the AV-Diff config. spec: its input spec. batch: samples per batch.
        t_a / t_v: mean audio / video steps. novel: mean novel samples per batch (full phase).
        phase: ``base`` (everything trains) or ``full`` (fusion forward only, plus generation).
    """
    d, h = cfg.dim, cfg.encoder_hidden
    inner = cfg.heads * cfg.dim_head
    n_tok = 1 + t_a + t_v
    enc = t_a * (spec.audio_dim * h + h * d) + t_v * (spec.video_dim * h + h * d) + (t_a + t_v) * (d + cfg.pos_dim) * d
    layer = n_tok * (d * 3 * inner + inner * d + 2 * d * cfg.mlp_dim + 2 * n_tok * inner)
    fusion = 2 * (enc + cfg.depth * layer)  # forward FLOPs per sample
    widths = [cfg.dim_out + 1 + spec.text_dim] + [int(cfg.generator_hidden / (i + 1)) for i in range(cfg.diffusion_layers)]
    eps = 2 * (sum(a * b for a, b in zip(widths, widths[1:])) + widths[-1] * cfg.dim_out)
    heads = 2 * (d * cfg.decoder_hidden + cfg.decoder_hidden * cfg.dim_out) + eps
    trained = fusion + heads if phase == "base" else heads
    frozen = 0 if phase == "base" else fusion
    generation = 3 * novel * cfg.diffusion_steps * eps if phase == "full" else 0  # backward through the chain
    return (batch * (3 * trained + frozen) + generation) / 1e9


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
    rows: list[dict[str, Any]] = []
    gemm = matmul_gflops()
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
        store = view.stage_train(1)
        # real samples per configured batch: B in the base phase, B base + B novel (two steps) in the full phase
        real = method.batches_per_epoch(1) * train.batch_size
        flop = model_gflop_per_batch(cfg, spec, real, float(store.audio.lengths.mean()),
                                     float(store.video.lengths.mean()), gen["samples"] / batches, phase)  # fmt: skip
        rows.append({
            "phase": phase, "batches_timed": batches, "batch_size": train.batch_size, "real_per_batch": real,
            "ms_per_batch": 1000 * seconds / batches, "s_per_epoch": seconds / batches * full_batches,
            "cpu_s_per_epoch": cpu / batches * full_batches, "generation_share": gen["s"] / seconds,
            "reverse_chains": gen["calls"], "generated_per_batch": gen["samples"] / batches,
            "diffusion_steps": cfg.diffusion_steps, "peak_rss_mb": _peak_rss_mb(), "load_average": list(os.getloadavg()),
            "model_gflop_per_batch": flop, "matmul_gflops": gemm, "floor_cpu_s_per_epoch": flop / gemm * full_batches,
        })  # fmt: skip
    evals = FeatureSet.concat([gzsl.splits["stage_1_val_seen"], gzsl.splits["stage_1_val_unseen"]])
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.scores(evals)
    rows.append({"phase": "eval", "videos": len(evals), "s_per_video": (time.perf_counter() - t0) / len(evals),
                 "cpu_s_per_video": (time.process_time() - c0) / len(evals), "peak_rss_mb": _peak_rss_mb(),
                 "load_average": list(os.getloadavg())})  # fmt: skip
    return rows


def protocol_seconds(
    rows: list[dict[str, Any]], dataset: str, epochs: int, epochs_fine_tune: int,
    best_base: int | None = None, best_full: int | None = None, key: str = "cpu_s",
) -> dict[str, float]:
    """The whole GFSL protocol's seconds, computed from the measured parts (not run).

    Stage 1: ``epochs`` base + ``epochs_fine_tune`` full epochs, each followed by one
    evaluation of the validation videos (Val_B + Val_N of Table 4.1). Stage 2: ``best_base + 1``
    base epochs, then per draw ``best_full + 1`` fine-tune epochs and one test evaluation
    (Test_B + Test_N). ``best_*`` default to the last epoch (the longest protocol).

    Args:
        rows: :func:`run`'s rows (base, full, eval). dataset: its Table 4.1 counts.
        key: ``cpu_s`` (CPU seconds) or ``s`` (wall seconds).

    Returns:
        Seconds per part and ``total``.
    """
    from lowshot.data.av.fsl import TABLE_4_1

    by = {r["phase"]: r for r in rows}
    base, full, video = by["base"][f"{key}_per_epoch"], by["full"][f"{key}_per_epoch"], by["eval"][f"{key}_per_video"]
    _, _, val_b, val_n = TABLE_4_1[dataset]["stage_1"]
    _, _, test_b, test_n = TABLE_4_1[dataset]["stage_2"]
    bb = epochs - 1 if best_base is None else best_base
    bf = epochs_fine_tune - 1 if best_full is None else best_full
    parts = {
        "stage 1 base phase": epochs * base, "stage 1 full phase": epochs_fine_tune * full,
        "stage 1 validation": (epochs + epochs_fine_tune) * (val_b + val_n) * video,
        "stage 2 base phase": (bb + 1) * base, "stage 2 fine-tunes (3 draws)": 3 * (bf + 1) * full,
        "stage 2 tests (3 draws)": 3 * (test_b + test_n) * video,
    }  # fmt: skip
    return parts | {"total": sum(parts.values())}


def main() -> None:
    """Print the rows as a markdown table (and JSON with ``--json``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=30, help="timed batches per phase (300 = one epoch)")
    p.add_argument("--size", type=float, default=0.1, help="synthetic data size (fraction of UCF)")
    p.add_argument("--dataset", default="UCF", help="UCF | ActivityNet | VGGSound (its 5-shot setting)")
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args()
    rows = run(args.batches, args.size, args.dataset)
    print("| phase | ms/batch | s/epoch (300 batches) | CPU s/epoch | floor CPU s/epoch | generation share | chains | "
          "generated/batch | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows[:2]:
        print(f"| {r['phase']} | {r['ms_per_batch']:.0f} | {r['s_per_epoch']:.0f} | {r['cpu_s_per_epoch']:.0f} | "
              f"{r['floor_cpu_s_per_epoch']:.0f} ({r['model_gflop_per_batch']:.1f} GFLOP/batch at {r['matmul_gflops']:.0f} GFLOP/s) | "
              f"{100 * r['generation_share']:.0f} % | {r['reverse_chains']} | {r['generated_per_batch']:.1f} | {r['peak_rss_mb']:.0f} |")
    ev = rows[2]
    print(f"\nevaluation: {1000 * ev['s_per_video']:.1f} ms / {1000 * ev['cpu_s_per_video']:.1f} CPU ms per video "
          f"({ev['videos']} videos)")
    from lowshot.config.paper import load_paper_config

    raw = load_paper_config(f"avdiff.{args.dataset.lower()}_5shot")
    epochs, fine = int(raw["train"]["epochs"]), int(raw["protocol"]["epochs_fine_tune"])
    print(f"\nwhole 3-draw protocol, COMPUTED from the parts above ({epochs} + {fine} stage-1 epochs, stage 2 at the "
          "last epochs = the longest run):\n\n| part | CPU h | wall h |\n|---|---|---|")
    cpu = protocol_seconds(rows, args.dataset, epochs, fine)
    wall = protocol_seconds(rows, args.dataset, epochs, fine, key="s")
    for part in cpu:
        print(f"| {part} | {cpu[part] / 3600:.2f} | {wall[part] / 3600:.2f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
