"""Epoch time and peak memory of the image-ZSL baselines (ALE, SJE, DEVISE, APN, f-VAEGAN-D2),
and their S / U / HM / ZSL on the synthetic UCF-cls data beside AVCA and ClipClap.

Usage (figures in docs/benchmarks.md)::

    python benchmarks/gzsl_imgzsl.py epoch --size 1.0 --batches 20
    python benchmarks/gzsl_imgzsl.py table --size 0.1 --epochs 4 --n-batches 50 --lr 0.002 --batch-size 128

``epoch`` builds the synthetic UCF-cls benchmark (VGGish 128 + C3D 4096, time-averaged; real
class and video counts times ``--size``) once, then, for each method in a fresh process (so
that peak RSS is the method's own), times ``--batches`` training batches of the published
batch size and extrapolates to the published 500 batches per epoch, plus the end-of-epoch hook
(f-VAEGAN-D2: synthesis + classifier fit) and the scoring of stage-1 validation.

``table`` runs the two-stage protocol on the synthetic UCF-cls data for seeds 42, 43, 44
with a shortened schedule (the same for every method) and prints mean S / U / HM / ZSL.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BASELINES = ("ale", "sje", "devise", "apn", "fvaegan_d2")
#: published batch size per method (run scripts; CLI default 256; f-VAEGAN-D2 64)
BATCH_SIZE = {"fvaegan_d2": 64}
#: settings of the published UCF-cls cells (f-VAEGAN-D2 has main only: its settings, cls data)
SETTING = {"fvaegan_d2": "fvaegan_d2.ucf_main", "clipclap": "clipclap.ucf"}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def benchmark_of(size: float, cache: Path):
    """The synthetic UCF-cls benchmark (cached as a pickle in ``cache``)."""
    from lowshot.data.av.synth import make_synthetic_benchmark

    if cache.exists():
        with cache.open("rb") as fh:
            return pickle.load(fh)
    bench = make_synthetic_benchmark("cls_averaged", "UCF", 0, size, split="cls")
    with cache.open("wb") as fh:
        pickle.dump(bench, fh)
    return bench


def method_and_train(name: str, bench, overrides: tuple[str, ...] = (), **train_overrides):
    """A fresh method of ``name`` with its published UCF setting's model and training values
    (then ``overrides``, ``key=value`` strings, then ``train_overrides``)."""
    from lowshot.config.paper import load_paper_config
    from lowshot.recipes.gzsl import input_spec, parse_experiment

    setting = SETTING.get(name, f"{name}.ucf_cls")
    exp, model_cfg = parse_experiment(load_paper_config(setting, ["train.progress=false", *overrides]))
    from dataclasses import replace

    from lowshot.methods.base import GZSLMethod, method_of_family

    cls = method_of_family(exp.method, GZSLMethod, "gzsl")
    return cls(model_cfg, input_spec(bench)), replace(exp.train, **train_overrides), exp


def time_one(args: argparse.Namespace) -> None:
    """(child process) time one method's epoch parts; print one JSON line."""
    from lowshot.recipes.gzsl_trainer import MethodTrainer

    torch.set_num_threads(1)
    bench = benchmark_of(args.size, Path(args.cache))
    rss_data = peak_rss_mib()
    torch.manual_seed(0)
    bs = BATCH_SIZE.get(args.method, 256)
    method, train, _ = method_and_train(args.method, bench, n_batches=args.batches, batch_size=bs)
    trainer = MethodTrainer(method, bench, 1, train, 0, torch.device("cpu"))
    hook = method.on_epoch_end
    hook_time = [0.0, 0.0]  # wall, CPU

    def timed_hook(*a):
        t, cpu = time.perf_counter(), time.process_time()
        hook(*a)
        hook_time[0] = time.perf_counter() - t
        hook_time[1] = time.process_time() - cpu

    method.on_epoch_end = timed_hook  # type: ignore[method-assign]
    trainer.train_epoch(0)  # warm-up (allocations, first Adam step)
    t, cpu = time.perf_counter(), time.process_time()
    trainer.train_epoch(1)
    train_time = time.perf_counter() - t - hook_time[0]
    cpu_time = time.process_time() - cpu
    seen, unseen, _, _ = bench.stage_eval(1)
    t = time.perf_counter()
    trainer.scores(seen)
    trainer.scores(unseen)
    score_time = time.perf_counter() - t
    per_batch = train_time / args.batches
    print(json.dumps({
        "method": args.method, "batch_size": bs, "per_batch_ms": 1e3 * per_batch,
        "per_batch_cpu_ms": 1e3 * (cpu_time - hook_time[1]) / args.batches, "hook_cpu_s": hook_time[1],
        "epoch_500_s": 500 * per_batch + hook_time[0] + score_time, "hook_s": hook_time[0], "score_s": score_time,
        "peak_rss_mib": peak_rss_mib(), "rss_after_data_mib": rss_data,
        "train_samples": len(bench.stage_train(1)),
    }))


def bench_epoch(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "bench.pkl"
        t = time.perf_counter()
        benchmark_of(args.size, cache)
        print(f"synthetic UCF-cls, size {args.size}: generated in {time.perf_counter() - t:.1f} s")
        for name in args.methods:
            cmd = [sys.executable, __file__, "_one", name, "--size", str(args.size), "--cache", str(cache),
                   "--batches", str(args.batches)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"{name:11s} bs {r['batch_size']:3d}: {r['per_batch_ms']:7.2f} ms/batch (CPU {r['per_batch_cpu_ms']:.1f} ms), "
                  f"hook CPU {r['hook_cpu_s']:.2f} s, epoch (500 batches + hook "
                  f"{r['hook_s']:.2f} s + val scoring {r['score_s']:.2f} s) {r['epoch_500_s']:7.1f} s, "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB (data alone {r['rss_after_data_mib']:.0f} MiB)", flush=True)


def bench_table(args: argparse.Namespace) -> None:
    from lowshot.protocols.calibration import beta_grid
    from lowshot.protocols.gzsl import TwoStageProtocol
    from lowshot.recipes.gzsl_trainer import MethodTrainer
    from lowshot.utils.seed import seed_everything

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        bench = benchmark_of(args.size, Path(tmp) / "bench.pkl")
        for name in args.methods:
            rows, t = [], time.perf_counter()
            for seed in (42, 43, 44):
                def make_trainer(stage: int, seed: int = seed, name: str = name):
                    seed_everything(seed + 1000 * stage)
                    common = {"batch_size": args.batch_size, "lr": args.lr, "lr_scheduler": False} if args.lr else {}
                    method, train, _ = method_and_train(
                        name, bench, tuple(args.overrides), epochs=args.epochs, n_batches=args.n_batches,
                        seeds=(seed,), **common
                    )
                    return MethodTrainer(method, bench, stage, train, seed, torch.device("cpu"))

                _, _, exp = method_and_train(name, bench)
                grid = beta_grid(*exp.protocol.beta_grid)
                rows.append(TwoStageProtocol(args.epochs, grid).fit(bench, make_trainer).summary())
            mean = {k: float(np.mean([r[k] for r in rows])) for k in ("S", "U", "HM", "ZSL")}
            std = {k: float(np.std([r[k] for r in rows])) for k in ("S", "U", "HM", "ZSL")}
            cells = " | ".join(f"{mean[k]:.1f} ± {std[k]:.1f}" for k in ("S", "U", "HM", "ZSL"))
            zsl = ", ".join(f"{r['ZSL']:.1f}" for r in rows)
            print(f"| {name} | {cells} | {zsl} | {time.perf_counter() - t:.0f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("epoch")
    p.add_argument("--size", type=float, default=1.0)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--methods", nargs="+", default=list(BASELINES))
    p = sub.add_parser("table")
    p.add_argument("--size", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--n-batches", type=int, default=100)
    p.add_argument("--methods", nargs="+", default=[*BASELINES, "avca", "clipclap"])
    p.add_argument("--lr", type=float, default=None,
                   help="one Adam lr for every method, with --batch-size and no LR scheduler (default: each setting's own)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--overrides", nargs="*", default=[], help="more key=value overrides of every setting")
    p = sub.add_parser("_one")
    p.add_argument("method")
    p.add_argument("--size", type=float, required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--batches", type=int, required=True)
    args = parser.parse_args()
    {"epoch": bench_epoch, "table": bench_table, "_one": time_one}[args.cmd](args)


if __name__ == "__main__":
    main()
