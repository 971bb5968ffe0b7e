"""Shared timing helpers of the benchmark scripts: interleaved medians, load, matmul floor.

Every A/B comparison runs its variants interleaved in the same process (one round = each
variant once), so that a busy shared machine slows them alike; the median over rounds is
reported with the load average seen during the run.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable

import torch


def machine() -> str:
    """One line: CPU (and GPU), torch version and threads."""
    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}{gpu}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``"9.1 / 8.7 / 6.0"``."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def sync() -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def interleaved_medians(
    variants: dict[str, Callable[[], object]], rounds: int = 5, warmup: int = 1, clock: str = "wall"
) -> dict[str, float]:
    """Median seconds of each variant over ``rounds`` interleaved rounds (after ``warmup``).

    ``clock="cpu"`` measures the process's CPU time instead of wall time: on a shared,
    overloaded CPU it estimates the cost on an idle core (one thread) far more stably.
    """
    now = time.process_time if clock == "cpu" else time.perf_counter
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(warmup + rounds):
        for name, fn in variants.items():
            sync()
            t0 = now()
            fn()
            sync()
            if r >= warmup:
                times[name].append(now() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def matmul_runner(
    shapes: Iterable[tuple[int, int, int]], dtype: torch.dtype, device: str = "cpu"
) -> tuple[Callable[[], None], float]:
    """A function running ``[m, k] @ [k, n]`` products at the given shapes, and its FLOPs.

    Each shape runs as the forward product plus the two backward products (``dX`` and
    ``dW``), i.e. what a Linear layer costs in a training step, ``reps`` times (about 0.2
    GFLOP per shape on CPU, 20 on GPU). Time it with :func:`interleaved_medians` next to
    the step it is the floor of; throughput = FLOPs / median seconds.
    """
    work = []
    flops = 0.0
    for m, k, n in shapes:
        reps = max(1, int((2e8 if device == "cpu" else 2e10) / (6 * m * k * n)))
        a = torch.randn(m, k, device=device, dtype=dtype)
        w = torch.randn(k, n, device=device, dtype=dtype)
        g = torch.randn(m, n, device=device, dtype=dtype)
        work.append((a, w, g, reps))
        flops += 6.0 * m * k * n * reps

    def run() -> None:
        for a, w, g, reps in work:
            for _ in range(reps):
                a @ w
                g @ w.T
                a.T @ g

    return run, flops
