"""bf16 against fp32 (``train.precision``): HM parity on synthetic benchmarks, step time
against the matmul floor.

``parity``: the two-stage protocol (``run_gzsl``) on a small synthetic benchmark per method,
3 seeds each, fp32 and bf16; prints test S / U / HM per seed and the mean +- std of HM.

``speed``: one method at its published setting (``clipclap.ucf``: batch 64 on CLIP/CLAP
features; ``avca.ucf_cls``: batch 256 on VGGish/C3D averages; ``tcaf.ucf_cls``: batch 64
on VGGish/C3D sequences) through the trainer on ``--device``,
fp32 and bf16 interleaved (median of ``--rounds`` rounds of ``--batches`` batches; CPU time
of the one thread on CPU, wall time on GPU), next to
the floors: model FLOPs per step (``torch.utils.flop_counter`` on one training step:
forward + backward) divided by the matmul throughput measured at the model's Linear shapes,
in fp32 and in bf16 (:func:`_timing.matmul_runner`, timed interleaved with the steps).

Usage::

    OMP_NUM_THREADS=1 nice python benchmarks/precision.py parity --method clipclap
    OMP_NUM_THREADS=1 nice python benchmarks/precision.py parity --method tcaf --set data.synthetic_size=0.1
    OMP_NUM_THREADS=1 nice python benchmarks/precision.py speed --method avca --batches 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
from _timing import (
    gzsl_trainer,
    interleaved_medians,
    linear_shapes_and_flops,
    load_average,
    machine,
    matmul_runner,
)

#: small synthetic runs of the parity table: (setting, overrides)
PARITY = {
    "clipclap": ("clipclap.ucf", ["data.synthetic=clipclap", "data.synthetic_size=0.1", "train.epochs=4",
                                  "train.n_batches=50"]),
    "avca": ("avca.ucf_cls", ["data.synthetic=cls_averaged", "data.synthetic_size=0.1", "train.epochs=4",
                              "train.n_batches=30"]),
    # a narrow TCaF (d 64, one layer) at a larger LR: the published width does not learn
    # anything in the few steps a parity run can afford on this CPU
    "tcaf": ("tcaf.ucf_cls", ["data.synthetic=cls_temporal", "data.synthetic_size=0.02", "train.epochs=3",
                              "train.n_batches=30", "train.lr=0.001", "model.dim=64", "model.encoder_hidden=128",
                              "model.decoder_hidden=128", "model.depth=1", "model.heads=2", "model.dim_head=32",
                              "model.mlp_dim=64", "train.eval_batch_size=256"]),
}  # fmt: skip
SPEED = {
    "clipclap": ("clipclap.ucf", "clipclap", 0.1),
    "avca": ("avca.ucf_cls", "cls_averaged", 0.1),
    "tcaf": ("tcaf.ucf_cls", "cls_temporal", 0.1),
}


def parity(
    method: str, seeds: list[int], threads: int, extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.gzsl import run_gzsl

    setting, overrides = PARITY[method]
    overrides = [*overrides, *extra]
    rows = []
    for seed in seeds:  # fp32 and bf16 of a seed one after the other: a cut-off run stays paired
        for precision in ("fp32", "bf16"):
            cfg = load_paper_config(setting, [*overrides, f"train.seeds=[{seed}]", f"train.precision={precision}",
                                              f"train.num_threads={threads}", "train.progress=false"])  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                summary = run_gzsl(cfg, Path(tmp) / "run")
            r = {k: summary.metrics[k].mean for k in ("S", "U", "HM", "ZSL")}
            rows.append({"method": method, "precision": precision, "seed": seed, **r})
            print(json.dumps(rows[-1]), flush=True)
    for precision in ("fp32", "bf16"):
        hm = [r["HM"] for r in rows if r["precision"] == precision]
        print(f"{method} {precision}: HM {statistics.mean(hm):.2f} +- {statistics.pstdev(hm):.2f} "
              f"({', '.join(f'{h:.2f}' for h in hm)})")  # fmt: skip
    return rows


def _trainer(method: str, precision: str, device: str = "cpu") -> Any:
    from lowshot.config.paper import load_paper_config

    setting, preset, size = SPEED[method]
    trainer = gzsl_trainer(
        setting, preset, size, [f"train.precision={precision}", "train.n_batches=1"], device
    )
    return trainer, int(load_paper_config(setting)["train"]["n_batches"])


def speed(method: str, batches: int, rounds: int, device: str = "cpu") -> dict[str, Any]:
    trainers = {p: _trainer(method, p, device)[0] for p in ("fp32", "bf16")}
    per_epoch = _trainer(method, "fp32")[1]
    calls, flops = linear_shapes_and_flops(
        trainers["fp32"].method, lambda: trainers["fp32"].train_epoch(0)
    )
    shapes = sorted(set(calls))
    for t in trainers.values():
        t.config = type(t.config)(**{**t.config.__dict__, "n_batches": batches})
    variants = {p: (lambda t=t: t.train_epoch(1)) for p, t in trainers.items()}
    matmuls = {
        p: matmul_runner(shapes, dtype, device)
        for p, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    variants.update({f"matmul {p}": fn for p, (fn, _) in matmuls.items()})
    clock = "cpu" if device == "cpu" else "wall"  # CPU time of one thread: stable under load
    times = interleaved_medians(variants, rounds, clock=clock)  # steps and floors interleaved
    tput = {p: matmuls[p][1] / times[f"matmul {p}"] / 1e9 for p in matmuls}
    out = {"method": method, "device": machine(), "clock": clock, "flops_per_step": flops, "linear_shapes": shapes, "batches_per_epoch": per_epoch,
           "load_average": load_average()}  # fmt: skip
    print(
        f"{method}: {flops / 1e9:.2f} GFLOP per step (fwd+bwd), Linear shapes {shapes}; {clock} time"
    )
    for p in ("fp32", "bf16"):
        step = times[p] / batches
        floor = flops / (tput[p] * 1e9)
        out[p] = {"s_per_step": step, "s_per_epoch": step * per_epoch, "achieved_gflops": flops / step / 1e9,
                  "matmul_gflops": tput[p], "floor_s_per_epoch": floor * per_epoch}  # fmt: skip
        print(f"  {p}: {1e3 * step:.1f} ms/step = {step * per_epoch:.1f} s/epoch ({per_epoch} batches); achieved "
              f"{flops / step / 1e9:.1f} GFLOP/s vs {p} matmul {tput[p]:.1f} GFLOP/s at these shapes -> floor "
              f"{floor * per_epoch:.1f} s/epoch, ratio {step / floor:.2f}x")  # fmt: skip
    bf16_floor = out["bf16"]["floor_s_per_epoch"]
    print(
        f"  against the bf16 floor: fp32 {out['fp32']['s_per_epoch'] / bf16_floor:.2f}x, "
        f"bf16 {out['bf16']['s_per_epoch'] / bf16_floor:.2f}x; load {load_average()}"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("parity")
    p.add_argument("--method", choices=sorted(PARITY), action="append")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument(
        "--set", nargs="*", default=[], help="extra config overrides, e.g. data.synthetic_size=0.1"
    )
    p = sub.add_parser("speed")
    p.add_argument("--method", choices=sorted(SPEED), action="append")
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--device", default="cpu")
    for p in sub.choices.values():
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{machine()}; load average {load_average()}")
    if args.what == "parity":
        out: Any = [
            r
            for m in args.method or sorted(PARITY)
            for r in parity(m, args.seeds, args.threads, tuple(args.set))
        ]
    else:
        methods = args.method or ["clipclap", "avca"]
        out = [speed(m, args.batches, args.rounds, args.device) for m in methods]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
