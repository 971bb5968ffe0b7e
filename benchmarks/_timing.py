"""Shared timing helpers of the benchmark scripts: interleaved medians, load, matmul floor.

Every A/B comparison runs its variants interleaved in the same process (one round = each
variant once), so that a busy shared machine slows them alike; the median over rounds is
reported with the load average seen during the run.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

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
    shapes: Iterable[tuple[int, int, int]],
    dtype: torch.dtype,
    device: str = "cpu",
    weighted: bool = False,
) -> tuple[Callable[[], None], float]:
    """A function running ``[m, k] @ [k, n]`` products at the given shapes, and its FLOPs.

    Each shape runs as the forward product plus the two backward products (``dX`` and
    ``dW``), i.e. what a Linear layer costs in a training step, ``reps`` times (about 0.2
    GFLOP per shape on CPU, 20 on GPU). With ``weighted``, ``shapes`` lists one entry per
    call of the step (repeats allowed) and each distinct shape gets the share of the same
    total budget that it has of the step's FLOPs, so that throughput is that of the step's
    mix (not dragged down by tiny shapes that carry few FLOPs). Time it with
    :func:`interleaved_medians` next to the step it is the floor of; throughput = FLOPs /
    median seconds.
    """
    shapes = list(shapes)
    distinct = sorted(set(shapes))
    budget = 2e8 if device == "cpu" else 2e10
    share = {s: 1.0 for s in distinct}
    if weighted:
        total = sum(m * k * n for m, k, n in shapes)
        share = {s: len(distinct) * shapes.count(s) * s[0] * s[1] * s[2] / total for s in distinct}
    work = []
    flops = 0.0
    for m, k, n in distinct:
        reps = max(1, int(budget * share[(m, k, n)] / (6 * m * k * n)))
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


class _GlobalOnly(contextlib.nullcontext):
    """Stands in for ``FlopCounterMode``'s module tracker: every FLOP goes to ``"Global"``."""

    parents = frozenset({"Global"})


def linear_shapes_and_flops(
    module: torch.nn.Module, step: Callable[[], object]
) -> tuple[list[tuple[int, int, int]], float]:
    """Run ``step`` once; the ``(rows, in, out)`` shapes of ``module``'s Linear layers it met
    (one entry per call, sorted) and the FLOPs it ran (``torch.utils.flop_counter``: forward + backward matmuls,
    convolutions and attention; element-wise work is not counted).

    A model without Linear layers (its maps held as Parameters, e.g. APN) gets the shapes of
    the 2-D products (``mm`` / ``addmm``) its forward passes ran instead.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    products: list[tuple[int, int, int]] = []

    class ForwardProducts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if torch.is_grad_enabled() and func in (
                torch.ops.aten.mm.default,
                torch.ops.aten.addmm.default,
            ):
                a, b = args[-2:]
                products.append((a.shape[0], a.shape[1], b.shape[1]))
            return func(*args, **(kwargs or {}))

    shapes = []
    hooks = [mod.register_forward_hook(lambda m, i, o: shapes.append((i[0].reshape(-1, m.in_features).shape[0],
                                                                        m.in_features, m.out_features)))
             for mod in module.modules() if isinstance(mod, torch.nn.Linear)]  # fmt: skip
    counter = FlopCounterMode(display=False)
    # count globally only: the per-module tracker's autograd hooks make torch.autograd.grad
    # (f-VAEGAN-D2's gradient penalty) fail ("A leaf node was passed to _will_engine_execute_node")
    counter.mod_tracker = _GlobalOnly()
    with counter, ForwardProducts():
        step()
    for h in hooks:
        h.remove()
    return sorted(shapes or products), float(counter.get_total_flops())


def gzsl_trainer(
    setting: str, preset: str, size: float, overrides: Sequence[str] = (), device: str = "cpu"
) -> Any:
    """A stage-1 ``MethodTrainer`` of paper setting ``setting`` (model and training values) on
    ``make_synthetic_benchmark(preset, <the setting's dataset>, size=size)``, seeded 0."""
    from lowshot.config.paper import load_paper_config
    from lowshot.data.av.synth import make_synthetic_benchmark
    from lowshot.methods.base import GZSLMethod, method_of_family
    from lowshot.recipes.gzsl import input_spec, parse_experiment
    from lowshot.recipes.gzsl_trainer import MethodTrainer

    exp, model_cfg = parse_experiment(
        load_paper_config(setting, ["train.progress=false", *overrides])
    )
    text = list(exp.data.text) if exp.data.text else None
    bench = make_synthetic_benchmark(preset, exp.data.dataset, seed=0, size=size, text=text)
    torch.manual_seed(0)
    method = method_of_family(exp.method, GZSLMethod, "gzsl")(model_cfg, input_spec(bench))
    return MethodTrainer(method, bench, 1, exp.train, seed=0, device=torch.device(device))
