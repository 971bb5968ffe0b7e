"""Training cost of AVCA and TCaF on synthetic UCF-cls-sized data (issue 3).

Measures, each case in its own subprocess so that the peak resident memory is per case:

* ``avca_epoch``: one AVCA epoch at the published UCF-cls settings (500 batches of 256,
  time-averaged VGGish 128 / C3D 4096 features) through the real training loop
  (:class:`lowshot.recipes.gzsl_trainer.MethodTrainer`: sampling, collate, loss, Adam);
* ``tcaf_epoch``: one TCaF epoch at the published UCF-cls settings (300 batches of 64,
  depth 6, 8 heads, temporal features with the synthetic UCF length distribution);
* ``tcaf_length``: TCaF forward (eval, no grad) and forward+backward time for a batch of 64
  with 60 / 120 / 300 video steps (audio covering the same seconds).

Usage::

    python benchmarks/av_attention_models.py            # all cases, markdown table
    python benchmarks/av_attention_models.py --quick    # fewer batches (smoke run)
    python benchmarks/av_attention_models.py --case tcaf_length --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch

PUBLISHED_AVCA_S_PER_EPOCH = 78.0  # published implementation on this 2-core CPU (issue 3 brief)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _method(family: str, spec: Any) -> Any:
    from lowshot.config.paper import load_paper_config
    from lowshot.config.schema import from_dict
    from lowshot.methods.av.avca import AVCA
    from lowshot.methods.av.tcaf import TCaF

    cls = {"avca": AVCA, "tcaf": TCaF}[family]
    raw = load_paper_config(f"{family}.ucf_cls")
    return cls(from_dict(cls.Config, raw["model"]), spec), raw["train"]


def _epoch(
    family: str, quick: bool, batches: int | None = None, pack: bool = True
) -> dict[str, Any]:
    from lowshot.data.av.synth import make_synthetic_benchmark
    from lowshot.recipes.gzsl import input_spec
    from lowshot.recipes.gzsl_config import TrainConfig
    from lowshot.recipes.gzsl_trainer import MethodTrainer

    preset = "cls_averaged" if family == "avca" else "cls_temporal"
    bench = make_synthetic_benchmark(preset=preset, dataset="UCF", seed=0, size=0.1)
    torch.manual_seed(0)
    method, train = _method(family, input_spec(bench))
    if family == "tcaf":
        method.net.pack_tokens = pack
    n_batches = batches or (20 if quick else int(train["n_batches"]))
    cfg = TrainConfig(
        batch_size=int(train["batch_size"]), n_batches=3, lr=float(train["lr"]), progress=False
    )
    trainer = MethodTrainer(method, bench, 1, cfg, seed=0, device=torch.device("cpu"))
    trainer.train_epoch(0)  # warm-up (allocator, kernels)
    trainer.config = TrainConfig(
        batch_size=cfg.batch_size, n_batches=n_batches, lr=cfg.lr, progress=False
    )
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train_epoch(1)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    full = int(train["n_batches"])
    lengths = bench.splits["stage_1_train"].video.lengths if family == "tcaf" else None
    return {
        "case": f"{family}_epoch",
        "pack_tokens": pack if family == "tcaf" else None,
        "batch_size": cfg.batch_size,
        "batches_timed": n_batches,
        "ms_per_batch": 1000 * seconds / n_batches,
        "s_per_epoch": seconds / n_batches * full,
        "cpu_ms_per_batch": 1000 * cpu / n_batches,
        "cpu_s_per_epoch": cpu / n_batches * full,
        "load_average": list(os.getloadavg()),
        "batches_per_epoch": full,
        "peak_rss_mb": _peak_rss_mb(),
        "mean_video_steps": float(lengths.mean()) if lengths is not None else None,
    }


def _tcaf_length(quick: bool) -> dict[str, Any]:
    from lowshot.data.av.batch import Batch
    from lowshot.methods.base import InputSpec

    spec = InputSpec(128, 4096, 300, 0.96, 0.64, "vggish", "c3d")
    torch.manual_seed(0)
    method, _ = _method("tcaf", spec)
    opt = torch.optim.Adam(method.parameters(), lr=1e-4)
    emb = torch.randn(30, 300)
    rows = []
    b = 64
    for t_v in (60, 120, 300):
        t_a = round(t_v * 0.64 / 0.96)
        batch = Batch(
            torch.randint(0, 256, (b, t_a, 128)).float(), torch.rand(b, t_v, 4096), torch.zeros(b, dtype=torch.long),
            torch.randint(0, 30, (b,)), torch.ones(b, t_a, dtype=torch.bool), torch.ones(b, t_v, dtype=torch.bool),
            torch.arange(t_a).float().expand(b, -1) * 0.96, torch.arange(t_v).float().expand(b, -1) * 0.64,
        )  # fmt: skip
        reps = 1 if quick else 2
        method.eval()
        with torch.no_grad():
            method.class_scores(batch, emb)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(reps):
                method.class_scores(batch, emb)
            fwd, fwd_cpu = (time.perf_counter() - t0) / reps, (time.process_time() - c0) / reps
        method.train()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            loss = method.training_loss(batch, emb[:30])["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        step, step_cpu = (time.perf_counter() - t0) / reps, (time.process_time() - c0) / reps
        rows.append(
            {
                "video_steps": t_v,
                "audio_steps": t_a,
                "tokens": 1 + t_a + t_v,
                "forward_ms": 1000 * fwd,
                "train_step_ms": 1000 * step,
                "forward_cpu_ms": 1000 * fwd_cpu,
                "train_step_cpu_ms": 1000 * step_cpu,
                "load_average": list(os.getloadavg()),
                "peak_rss_mb_so_far": _peak_rss_mb(),
            }
        )
    return {"case": "tcaf_length", "batch_size": b, "rows": rows}


CASES = {
    "avca_epoch": lambda a: _epoch("avca", a.quick, a.batches),
    "tcaf_epoch": lambda a: _epoch("tcaf", a.quick, a.batches, not a.no_pack),
    "tcaf_length": lambda a: _tcaf_length(a.quick),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(CASES))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--batches", type=int, help="batches to time (extrapolated to an epoch)")
    ap.add_argument("--no-pack", action="store_true", help="TCaF: transformer on padded tokens too")
    args = ap.parse_args()
    if args.case:  # child process
        if args.threads:
            torch.set_num_threads(args.threads)
        out = CASES[args.case](args)
        out["torch_threads"] = torch.get_num_threads()
        print(json.dumps(out))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(out, fh, indent=1)
        return
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, numpy {np.__version__}"
    )
    results = []
    for case in CASES:
        cmd = [sys.executable, __file__, "--case", case] + (["--quick"] if args.quick else [])
        cmd += [f"--threads={args.threads}"] if args.threads else []
        cmd += [f"--batches={args.batches}"] if args.batches else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        if r["case"] == "tcaf_length":
            print(
                "\n| video steps | audio steps | tokens | forward ms (CPU ms) | train step ms (CPU ms) | peak RSS MB |"
            )
            print("|---|---|---|---|---|---|")
            for row in r["rows"]:
                print(
                    f"| {row['video_steps']} | {row['audio_steps']} | {row['tokens']} | {row['forward_ms']:.0f} "
                    f"({row['forward_cpu_ms']:.0f}) | {row['train_step_ms']:.0f} ({row['train_step_cpu_ms']:.0f}) | "
                    f"{row['peak_rss_mb_so_far']:.0f} |"
                )
        else:
            extra = ""
            if r["case"] == "avca_epoch":
                extra = f" (published ~{PUBLISHED_AVCA_S_PER_EPOCH:.0f} s: {PUBLISHED_AVCA_S_PER_EPOCH / r['s_per_epoch']:.1f}x)"
            print(
                f"{r['case']}: {r['s_per_epoch']:.1f} s/epoch wall, {r['cpu_s_per_epoch']:.1f} s CPU "
                f"({r['batches_per_epoch']} x {r['batch_size']}; "
                f"{r['ms_per_batch']:.1f} ms/batch over {r['batches_timed']} batches){extra}; "
                f"peak RSS {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
