"""Feasibility probe for seed-batched training (issue 15 item 3): wall time of one training
step of S seeds run as one stacked model against one seed, at the published ClipClap / AVCA
shapes. Not a training path: it measures what stacking can gain on this machine.

The stacked step is ``torch.func.functional_call`` of the method's own ``training_loss``
under ``torch.vmap`` over parameters, buffers and each seed's own batch (``randomness=
"different"``: dropout masks are not those of the separate runs, which is one reason this is
not yet an exact training path), backward of the summed per-seed losses, one fused Adam step
over the stacked parameters. The reference is S separate steps (one per seed model).

Usage::

    OMP_NUM_THREADS=1 nice python benchmarks/seed_stacking_probe.py --method clipclap --seeds 3
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _timing import interleaved_medians, load_average, machine
from precision import _trainer
from torch.func import functional_call, stack_module_state

from lowshot.data.av.batch import Batch


class _Loss(torch.nn.Module):
    """``forward`` = the method's ``training_loss`` (what ``functional_call`` calls)."""

    def __init__(self, method: torch.nn.Module) -> None:
        super().__init__()
        self.m = method

    def forward(self, batch: Batch, emb: torch.Tensor) -> torch.Tensor:
        return self.m.training_loss(batch, emb)["loss"]


def probe(method: str, n_seeds: int, rounds: int) -> None:
    trainers = [_trainer(method, "fp32")[0] for _ in range(n_seeds)]
    methods = [_Loss(t.method) for t in trainers]
    base = methods[0]
    params, buffers = stack_module_state(methods)  # [S, ...] leaves
    opt = torch.optim.Adam(params.values(), lr=1e-4, fused=True)
    t0 = trainers[0]
    emb = t0.train_embeddings

    def batches() -> list[Batch]:
        out = []
        for t in trainers:
            idx = np.random.default_rng().integers(0, len(t.train_set.labels), t.config.batch_size)
            out.append(t.method.collate(t.train_set, idx, t.targets[idx], True, t.rng))
        return out

    def loss_of(p, b, audio, video, labels, targets):
        batch = Batch(audio, video, labels, targets)
        return functional_call(base, (p, b), (batch, emb))

    stacked_loss = torch.vmap(loss_of, randomness="different")

    def stacked_step() -> None:
        bs = batches()
        stack = [
            torch.stack([getattr(b, f) for b in bs])
            for f in ("audio", "video", "labels", "targets")
        ]
        loss = stacked_loss(params, buffers, *stack).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def one_seed_step() -> None:
        trainers[0].train_epoch(1)

    for t in trainers:
        t.config = type(t.config)(**{**t.config.__dict__, "n_batches": 1})
    times = interleaved_medians(
        {"one seed": one_seed_step, f"{n_seeds} seeds stacked": stacked_step}, rounds, clock="cpu"
    )
    one, stacked = times.values()
    print(f"{method}: one seed {1e3 * one:.1f} ms/step, {n_seeds} seeds stacked {1e3 * stacked:.1f} ms/step "
          f"= {stacked / one:.2f}x one seed ({n_seeds} separate runs: {n_seeds:.0f}x); load {load_average()}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=["clipclap", "avca"], action="append")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{machine()}; load average {load_average()}")
    for m in args.method or ["clipclap", "avca"]:
        probe(m, args.seeds, args.rounds)


if __name__ == "__main__":
    main()
