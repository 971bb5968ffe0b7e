"""Temporal collate: :func:`gather_windows` of a batch from one feature block against the same
batch from a store split into two blocks.

A one-block batch is gathered straight into the output (fancy indexing copies once); a batch
spanning several blocks is gathered per block and copied into a preallocated batch, which is
what every batch cost before the one-block path (two copies of the batch). Shapes: C3D
features (4096-d) of UCF-like lengths (40-60 steps), batch 64, whole sequences (``max`` mode);
the two variants run interleaved in one process, median of ``--rounds``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/gather_windows.py --rounds 30
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._timing import interleaved_medians, load_average, machine
from lowshot.data.av.featureset import SequenceStore
from lowshot.data.av.sequences import gather_windows


def stores(n: int, dim: int, seed: int = 0) -> tuple[SequenceStore, SequenceStore]:
    """The same ``n`` sequences of ``[40..60, dim]`` float32 as one block and as two blocks."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(40, 61, n)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    block = rng.standard_normal((int(lengths.sum()), dim), dtype=np.float32)
    one = SequenceStore([block], np.zeros(n, np.int32), starts, lengths)
    half = int(starts[n // 2])
    two = SequenceStore(
        [block[:half], block[half:]],
        (np.arange(n) >= n // 2).astype(np.int32),
        np.where(np.arange(n) >= n // 2, starts - half, starts),
        lengths,
    )
    return one, two


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequences", type=int, default=1000)
    p.add_argument("--dim", type=int, default=4096)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=30)
    a = p.parse_args()
    one, two = stores(a.sequences, a.dim)
    rng = np.random.default_rng(1)
    # half the batch from each block, so the two-block store takes the per-block path
    idx = np.concatenate([rng.integers(0, a.sequences // 2, a.batch // 2),
                          rng.integers(a.sequences // 2, a.sequences, a.batch - a.batch // 2)])
    zeros = np.zeros(len(idx), np.int64)
    assert np.array_equal(gather_windows(one, idx, zeros, None).values, gather_windows(two, idx, zeros, None).values)
    med = interleaved_medians(
        {"one block": lambda: gather_windows(one, idx, zeros, None),
         "two blocks": lambda: gather_windows(two, idx, zeros, None)},
        rounds=a.rounds,
    )
    print(f"{machine()}; load average {load_average()}")
    print(f"batch {a.batch} x <=60 steps x {a.dim}: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in med.items()))


if __name__ == "__main__":
    main()
