"""Seed-batched training (``train.seed_batched``): wall time of one seed, of S seeds as one stacked
step (:class:`lowshot.recipes.gzsl_seed_batched.SeedBatch`) and of S separate runs, at the published
settings' shapes (``clipclap.ucf``: batch 64, CLIP/CLAP; ``avca.ucf_cls``: batch 256, VGGish/C3D
averages), next to the fp32 matmul floor (model FLOPs of S steps divided by the matmul throughput
measured at the model's Linear shapes, :func:`_timing.matmul_runner`, timed interleaved).

Usage::

    OMP_NUM_THREADS=1 nice python benchmarks/seed_batched.py --method clipclap --seeds 3
"""

from __future__ import annotations

import argparse

import torch
from _timing import (
    interleaved_medians,
    linear_shapes_and_flops,
    load_average,
    machine,
    matmul_runner,
)
from precision import _trainer

from lowshot.recipes.gzsl_seed_batched import SeedBatch


def measure(method: str, n_seeds: int, batches: int, rounds: int) -> None:
    """Print ms per step of the three variants, their ratio to one seed and their GFLOP/s against the floor."""
    probe = _trainer(method, "fp32")[0]
    calls, flops = linear_shapes_and_flops(probe.method, lambda: probe.train_epoch(0))
    shapes = sorted(set(calls))
    separate = [_trainer(method, "fp32")[0] for _ in range(n_seeds)]
    pool = iter([_trainer(method, "fp32")[0] for _ in range(n_seeds)])
    batch = SeedBatch(lambda _seed: next(pool), list(range(n_seeds)), torch.device("cpu"))
    for t in [*separate, *(s.trainer for s in batch.trainers)]:
        t.config = type(t.config)(**{**t.config.__dict__, "n_batches": batches})
    matmul, matmul_flops = matmul_runner(shapes, torch.float32)
    seeds = list(range(n_seeds))
    variants = {
        "1 seed": lambda: separate[0].train_epoch(1),
        f"{n_seeds} seeds stacked": lambda: batch.train_epochs(1, seeds),
        f"{n_seeds} separate": lambda: [t.train_epoch(1) for t in separate],
        "matmul": matmul,
    }
    times = interleaved_medians(variants, rounds, clock="cpu")
    tput = matmul_flops / times.pop("matmul")
    one = times["1 seed"]
    print(f"{method}: {flops / 1e9:.2f} GFLOP per seed-step (fwd+bwd); fp32 matmul {tput / 1e9:.1f} GFLOP/s "
          f"at {shapes}; CPU time, load {load_average()}")  # fmt: skip
    for name, t in times.items():
        n = 1 if name == "1 seed" else n_seeds
        step = t / batches
        floor = n * flops / tput
        print(f"  {name:>18}: {1e3 * step:7.1f} ms/step = {t / one:.2f}x one seed; achieved "
              f"{n * flops / step / 1e9:.1f} GFLOP/s, floor {1e3 * floor:.1f} ms ({step / floor:.2f}x)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=["clipclap", "avca"], action="append")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{machine()}; load average {load_average()}")
    for m in args.method or ["clipclap", "avca"]:
        measure(m, args.seeds, args.batches, args.rounds)


if __name__ == "__main__":
    main()
