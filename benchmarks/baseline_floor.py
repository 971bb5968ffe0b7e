"""Share of the compute floor each GZSL baseline reaches at its published UCF-cls (or
VGGSound-cls) setting: training step time against the matmul floor, and peak RSS.

The epoch is ``n_batches`` steps of the setting (no validation pass, no end-of-epoch hook).

Usage (figures in docs/benchmarks.md)::

    OMP_NUM_THREADS=1 nice python benchmarks/baseline_floor.py --dataset ucf
    OMP_NUM_THREADS=1 nice python benchmarks/baseline_floor.py --dataset vggsound --size 0.05

Each method runs in its own subprocess (peak RSS is its own), one thread, through the
recipe's ``MethodTrainer`` on ``make_synthetic_benchmark(<preset>, <dataset>, size=--size)``
(real feature sizes and class counts; ``--size`` of the video count). One "epoch" of
``--steps`` training steps (collate + loss + backward + Adam) is counted with
``torch.utils.flop_counter`` (forward + backward; this pass doubles as the warm-up); then
that epoch and the matmul products at the model's Linear shapes (:func:`_timing.matmul_runner`)
run interleaved, ``--rounds`` times, in CPU time. floor = FLOPs per step / matmul GFLOP/s at
those shapes; share = floor / measured CPU time per step. The end-of-epoch hook (f-VAEGAN-D2's
synthesis and classifier fit) is left out: it is a per-epoch cost, not a step's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch
from _timing import (
    gzsl_trainer,
    interleaved_medians,
    linear_shapes_and_flops,
    load_average,
    machine,
    matmul_runner,
)

#: method -> (setting of the dataset "{d}", synthetic preset). f-VAEGAN-D2 has main cells
#: only (its settings on the cls data, as benchmarks/gzsl_imgzsl.py); Hyper-multiple only CLIP/CLAP cells.
METHODS = {
    "ale": ("ale.{d}_cls", "cls_averaged"),
    "sje": ("sje.{d}_cls", "cls_averaged"),
    "devise": ("devise.{d}_cls", "cls_averaged"),
    "apn": ("apn.{d}_cls", "cls_averaged"),
    "fvaegan_d2": ("fvaegan_d2.{d}_main", "cls_averaged"),
    "cjme": ("cjme.{d}_cls", "cls_averaged"),
    "avgzslnet": ("avgzslnet.{d}_cls", "cls_averaged"),
    "attention_fusion": ("attention_fusion.{d}_cls", "cls_temporal"),
    "perceiver": ("perceiver.{d}_cls", "cls_temporal"),
    "hyper_multiple": ("hyper_multiple.{d}_clipclap", "clipclap"),
}
#: steps per timed epoch where the default does not fit: the Perceiver is ~2.4 s/step at full
#: width; f-VAEGAN-D2 trains its generator on every critic_iter-th (5th) step, so 5 steps are one cycle
STEPS = {"perceiver": 2, "fvaegan_d2": 5}


def floor_one(method: str, dataset: str, size: float, steps: int, rounds: int) -> dict:
    """(child process) FLOPs, CPU time and floor of one method's training step."""
    from lowshot.config.paper import load_paper_config

    torch.set_num_threads(1)
    setting, preset = METHODS[method]
    setting = setting.format(d=dataset)
    trainer = gzsl_trainer(setting, preset, size, [f"train.n_batches={steps}"])
    trainer.method.on_epoch_end = lambda *a: None  # a per-epoch cost, not a step's
    shapes, flops = linear_shapes_and_flops(trainer.method, lambda: trainer.train_epoch(0))
    flops /= steps
    run, mm_flops = matmul_runner(shapes, torch.float32, weighted=True)
    t = interleaved_medians(
        {"step": lambda: trainer.train_epoch(1), "matmul": run}, rounds, warmup=0, clock="cpu"
    )
    step_s = t["step"] / steps
    per_epoch = int(load_paper_config(setting)["train"]["n_batches"])
    matmul_gflops = mm_flops / t["matmul"] / 1e9
    floor_s = flops / (matmul_gflops * 1e9)
    return {
        "method": method, "setting": setting, "batch": trainer.config.batch_size, "gflop_step": flops / 1e9,
        "cpu_step_s": step_s, "n_batches": per_epoch, "achieved_gflops": flops / step_s / 1e9, "matmul_gflops": matmul_gflops,
        "floor_step_s": floor_s, "share": floor_s / step_s, "shapes": sorted(set(shapes)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["ucf", "vggsound"], default="ucf")
    ap.add_argument(
        "--size", type=float, default=0.1, help="video-count scale of the synthetic data"
    )
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    ap.add_argument(
        "--json", help="also write the figures (and Linear shapes) of every method here"
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        steps = STEPS.get(args.one, args.steps)
        print(json.dumps(floor_one(args.one, args.dataset, args.size, steps, args.rounds)))
        return
    torch.set_num_threads(1)
    print(f"{machine()}; load average {load_average()}")
    print("| setting | batch | GFLOP/step (fwd+bwd) | CPU s/step | CPU s/epoch (steps) | achieved GFLOP/s | matmul GFLOP/s at its "
          "Linear shapes | floor s/step | share of floor | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    rows = []
    for m in args.methods:
        cmd = [sys.executable, __file__, "--one", m, "--dataset", args.dataset, "--size", str(args.size),
               "--steps", str(args.steps), "--rounds", str(args.rounds)]  # fmt: skip
        r = json.loads(
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        print(f"| {r['setting']} | {r['batch']} | {r['gflop_step']:.2f} | {r['cpu_step_s']:.3f} | "
              f"{r['cpu_step_s'] * r['n_batches']:.0f} ({r['n_batches']}) | "
              f"{r['achieved_gflops']:.1f} | {r['matmul_gflops']:.1f} | {r['floor_step_s']:.3f} | "
              f"{100 * r['share']:.0f} % | {r['peak_rss_mib']:.0f} |", flush=True)  # fmt: skip
        rows.append(r)
    print(f"load average at the end {load_average()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
