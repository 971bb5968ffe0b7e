"""Per-seed execution inside a seed-batched step (several seeds run as one stacked model).

A separate run of seed ``s`` draws its dropout masks from torch's global RNG, in program order.
Seed-batched training (:mod:`lowshot.recipes.gzsl_seed_batched`) runs the method's
``training_loss`` once under :func:`torch.vmap` over the seeds; :func:`per_seed` is an op whose
vmap rule calls a function once per seed on that seed's slice (its autograd flows through), and
with ``draws`` first swaps the seed's own saved RNG state into the global generator and saves it
back afterwards. Each seed therefore consumes its own stream in the order its separate run
would, and layers routed through it (:class:`SeedLinear`, :class:`SeedBatchNorm`) make the very
kernel calls of a separate run: equal by construction, not by tolerance. Outside a batched step
:func:`per_seed` is the plain call, so separate runs are unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: one function, or one per seed (indexed by the seed's position in its :class:`SeedStreams`)
SeedFn = Callable[..., torch.Tensor] | Sequence[Callable[..., torch.Tensor]]
#: the streams of the seeds of the running batched step (None outside one)
_ACTIVE: list[SeedStreams | Sequence[int] | None] = [None, None]


class SeedStreams:
    """One saved torch RNG state per seed (the CPU generator, plus ``device``'s when it is CUDA).

    Args:
        device: the training device (its generator is swapped too when it is CUDA).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.states: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def _get(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _set(self, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.device)

    def capture(self) -> int:
        """Append the current global state as a new seed's stream; return its index."""
        self.states.append(self._get())
        return len(self.states) - 1

    @contextlib.contextmanager
    def use(self, seed: int) -> Iterator[None]:
        """Run the block on seed ``seed``'s stream (saved back afterwards); the global state is restored."""
        outer = self._get()
        self._set(self.states[seed])
        try:
            yield
        finally:
            self.states[seed] = self._get()
            self._set(outer)

    @contextlib.contextmanager
    def batched(self, seeds: Sequence[int]) -> Iterator[None]:
        """Inside the block, the vmapped slices ``0..len(seeds)-1`` draw from the streams ``seeds``."""
        _ACTIVE[:] = [self, list(seeds)]
        try:
            yield
        finally:
            _ACTIVE[:] = [None, None]


class _PerSeed(torch.autograd.Function):
    """``fn(*args)``; under vmap, ``fn`` once per seed on its contiguous slices (on the seed's own
    stream when ``draws``), so each slice gets the very kernel call of a separate run."""

    @staticmethod
    def forward(fn: Callable[..., torch.Tensor], draws: bool, *args: Any) -> torch.Tensor:
        # reached in a batched step only when no argument varies with the seed: the result is
        # the same for every seed, unless it draws (then each seed needs its own draw)
        if draws:
            raise RuntimeError("a random op in a seed-batched step on tensors that are the same for every seed")
        return fn(*args)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pass

    @staticmethod
    def vmap(info: Any, in_dims: tuple, fn: SeedFn, draws: bool, *args: Any) -> tuple[torch.Tensor, int]:
        streams, seeds = _ACTIVE
        if streams is None or len(seeds) != info.batch_size:
            raise RuntimeError("per_seed under vmap outside SeedStreams.batched (or with another seed count)")
        # unbind (not select): its backward is one stack, where S selects would add S full-size zero tensors
        slices = [a.unbind(d) if d is not None else [a] * len(seeds) for a, d in zip(args, in_dims[2:])]
        outs = []
        for k, seed in enumerate(seeds):
            with streams.use(seed) if draws else contextlib.nullcontext():
                call = fn[seed] if isinstance(fn, Sequence) else fn
                outs.append(call(*(s[k].contiguous() for s in slices)))
        return torch.stack(outs), 0


def per_seed(fn: SeedFn, draws: bool, *tensors: torch.Tensor) -> torch.Tensor:
    """``fn(*tensors)``; in a seed-batched step, ``fn`` (or ``fn[i]`` for seed ``i``, a list) of each
    seed's slices in turn (autograd flows through it), with torch's global RNG on that seed's stream
    when ``draws`` (``fn`` draws from it)."""
    if _ACTIVE[0] is None:
        assert not isinstance(fn, Sequence), "a per-seed list of functions needs a seed-batched step"
        return fn(*tensors)
    return _PerSeed.apply(fn, draws, *tensors)


def random_op(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
    """``fn(*tensors)``, a call that draws from torch's global RNG (:func:`per_seed` with ``draws``)."""
    return per_seed(fn, True, *tensors)


class SeedDropout(nn.Module):
    """``nn.Dropout`` whose masks come from each seed's own stream (:func:`random_op`)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout of ``x`` (any shape) in training mode, identity in evaluation mode."""
        if not self.training:
            return x
        return random_op(lambda t: F.dropout(t, self.p, True), x)


class SeedBatchNorm(nn.Module):
    """Training-mode ``nn.BatchNorm1d`` of each seed's own module (its weights, running statistics
    and counter), run per seed: vmap's rule normalises the seeds as one wider batch, which rounds
    differently from a separate run.

    Args:
        own: the seeds' modules (affine, tracking running statistics, with a momentum).
    """

    def __init__(self, own: Sequence[nn.BatchNorm1d]) -> None:
        super().__init__()
        self.own = own  # a plain list: not submodules, so not in the copy's state

        def norm(m: nn.BatchNorm1d) -> Callable[[torch.Tensor], torch.Tensor]:
            def run(x: torch.Tensor) -> torch.Tensor:
                m.num_batches_tracked.add_(1)
                return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, True, m.momentum, m.eps)

            return run

        self.fns = [norm(m) for m in own]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, D]`` batch-normalised with batch statistics; each seed's running statistics updated."""
        return per_seed(self.fns, False, x)


class SeedLinear(nn.Module):
    """Each seed's own ``nn.Linear``, run per seed: vmap's rule (``baddbmm``) rounds differently from
    a separate run's ``addmm`` at the published shapes, and the gradients land in the seeds' own
    parameters (no stacked copy).

    Args:
        own: the seeds' modules.
    """

    def __init__(self, own: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.own = own
        self.fns = [lambda x, m=m: F.linear(x, m.weight, m.bias) for m in own]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., D_in]`` -> ``[..., D_out]``."""
        return per_seed(self.fns, False, x)


def seed_batched_copy(module: nn.Module, seeds: Sequence[nn.Module], prefix: str = "") -> nn.Module:
    """``module`` (a copy of ``seeds[0]`` to run under vmap) with every ``nn.Dropout`` replaced by
    :class:`SeedDropout`, and every ``nn.Linear`` and (affine, tracking) ``nn.BatchNorm1d`` by one
    that runs the seeds' own module of that name (in place). Returns ``module``."""
    for name, child in list(module.named_children()):
        own = [dict(s.named_modules())[prefix + name] for s in seeds]
        if type(child) is nn.Dropout:
            setattr(module, name, SeedDropout(child.p))
        elif type(child) is nn.BatchNorm1d and child.affine and child.track_running_stats and child.momentum:
            setattr(module, name, SeedBatchNorm(own))
        elif type(child) is nn.Linear:
            setattr(module, name, SeedLinear(own))
        else:
            seed_batched_copy(child, seeds, f"{prefix}{name}.")
    return module
