"""Per-seed execution inside a seed-batched step (several seeds run as one stacked model).

A separate run of seed ``s`` draws its dropout masks from torch's global RNG, in program order.
Seed-batched training (:mod:`lowshot.recipes.gzsl_seed_batched`) runs the method's
``training_loss`` once under :func:`torch.vmap` over the seeds; :func:`per_seed` is an op whose
vmap rule calls a function once per seed on that seed's slice (its autograd flows through), and
with ``draws`` first swaps the seed's own saved RNG state into the global generator and saves it
back afterwards. Layers routed through it (:class:`SeedModule`: each seed's own Linear /
BatchNorm / dropout blocks) therefore make the very kernel calls of the seed's separate run and
consume its own RNG stream in the same order: equal by construction, not by tolerance. Outside a
batched step :func:`per_seed` is the plain call, so separate runs are unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
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


#: layers a seed-batched copy runs whole, per seed, as the seed's own module (a Sequential of them too)
PER_SEED_LAYERS = (nn.Linear, nn.BatchNorm1d, nn.Dropout, nn.ReLU, nn.GELU, nn.LayerNorm)


class SeedModule(nn.Module):
    """In a seed-batched step: each seed's own module (its weights, running statistics, and its RNG
    stream for dropout) on the seed's slice, i.e. the separate run's very calls. vmap's batched
    kernels are not used for them: ``baddbmm`` (a vmapped Linear) and vmap's BatchNorm rule round
    differently from a separate run, and Linear -> BatchNorm biases turn such rounding into LR-sized
    Adam steps.

    Args:
        own: the seeds' modules, in the order of their streams (held as a plain list: not submodules).
    """

    def __init__(self, own: Sequence[nn.Module]) -> None:
        super().__init__()
        self.own = list(own)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The seeds' modules on ``x`` (one slice per seed)."""
        return per_seed(self.own, True, x)

    def __getitem__(self, idx: int | slice) -> SeedModule:
        """The same item (or slice) of every seed's ``nn.Sequential``."""
        return SeedModule([m[idx] for m in self.own])


def seed_batched_copy(module: nn.Module, seeds: Sequence[nn.Module], prefix: str = "") -> nn.Module:
    """``module`` (a copy of ``seeds[0]`` to run under vmap) with every outermost ``nn.Sequential`` of
    :data:`PER_SEED_LAYERS`, and every such layer elsewhere, replaced by a :class:`SeedModule` of the
    seeds' own modules of that name (in place). Returns ``module``."""
    for name, child in list(module.named_children()):
        if _layers_only(child):
            setattr(module, name, SeedModule([dict(s.named_modules())[prefix + name] for s in seeds]))
        else:
            seed_batched_copy(child, seeds, f"{prefix}{name}.")
    return module


def _layers_only(module: nn.Module) -> bool:
    if type(module) is nn.Sequential:
        return all(_layers_only(m) for m in module)
    return type(module) in PER_SEED_LAYERS
