"""Multi-process training (``torchrun`` + DDP) for the GZSL trainer; a no-op in one process.

``torchrun --nproc_per_node=N -m lowshot.cli.main train ...`` sets ``RANK`` / ``WORLD_SIZE`` /
``MASTER_ADDR`` / ``MASTER_PORT``; :func:`init_from_env` then joins the process group (``nccl``
on GPUs, ``gloo`` on CPU). Every rank draws the same seeded epoch of batch indices and
collates the whole batch (so the sampler and collate RNGs advance exactly as in one process),
then keeps its contiguous slice (:func:`shard_batch`). Gradients are averaged by
:class:`~torch.nn.parallel.DistributedDataParallel` and BatchNorm statistics are pooled over
all ranks (:class:`PooledBatchNorm`, CPU-capable), so a per-sample-mean loss sees the same
effective batch as one process. Only rank 0 writes run directories, checkpoints and results;
every rank evaluates (the weights are identical, so are the scores).

Limits: dropout masks differ from one process (each rank draws its own), so equality with the
one-process run is exact only without dropout; BatchNorm's running variance over inputs that
every rank holds whole (e.g. the class embeddings) uses the pooled count for its unbiased
correction, as ``torch.nn.SyncBatchNorm`` does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 in one process)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 in one process)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (the one process that writes)."""
    return rank() == 0


def init_from_env() -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1); True if distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return is_distributed()


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if is_distributed():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. writes the run dir / generated data), the others after it."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def ray_connect(address: str, num_cpus: int | None = None) -> Any:
    """The ``ray`` module, connected to the cluster at ``address`` (``local``: start one here with
    ``num_cpus``); DataError naming the extra when Ray is not installed."""
    try:
        import ray
    except ImportError:
        from lowshot.errors import DataError

        raise DataError("Ray is not installed: pip install 'lowshot[scale]'") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    return ray


#: a batch: a dataclass whose tensor fields all have the batch as their first dimension
B = TypeVar("B")


def shard_batch(batch: B) -> B:
    """This rank's contiguous slice ``[B / world, ...]`` of every tensor field of ``batch``
    (the batch itself in one process).

    Raises:
        ValueError: the batch size is not a multiple of the world size (the gradient average
            would then weight samples unequally).
    """
    n, w = len(batch), world_size()
    if w == 1:
        return batch
    if n % w:
        raise ValueError(f"train.batch_size={n} is not a multiple of the {w} training processes")
    lo, hi = rank() * n // w, (rank() + 1) * n // w
    return replace(batch, **{f.name: getattr(batch, f.name)[lo:hi] for f in fields(batch)
                             if isinstance(getattr(batch, f.name), torch.Tensor)})  # fmt: skip


def mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each scalar averaged over the ranks (the full-batch mean of per-sample-mean losses)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    stacked = torch.stack([torch.as_tensor(values[k], dtype=torch.float64).cpu() for k in keys])
    dist.all_reduce(stacked)
    return {k: v / world_size() for k, v in zip(keys, stacked)}


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of all ranks' output gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class PooledBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics pool every rank's rows (differentiably), on any device.

    Same parameters, buffers and ``state_dict`` keys as the BatchNorm it replaces.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, *]`` -> same shape, normalised with statistics over all ranks' ``B`` rows."""
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        all_reduce = _AllReduceSum.apply
        count = all_reduce(torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device))
        mean = all_reduce(x.sum(dims)) / count
        var = all_reduce(((x - mean.view(shape)) ** 2).sum(dims)) / count  # biased, for normalising
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * count / (count - 1).clamp_min(1), m)
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def _pool_batchnorm(module: nn.Module) -> None:
    """Swap every BatchNorm of ``module`` for :class:`PooledBatchNorm` in place (same parameters)."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, PooledBatchNorm):
            pooled = PooledBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                     child.track_running_stats)  # fmt: skip
            pooled.load_state_dict(child.state_dict())
            if child.affine:
                pooled.weight, pooled.bias = child.weight, child.bias
            setattr(module, name, pooled.to(child.running_mean.device if child.track_running_stats else "cpu"))
        else:
            _pool_batchnorm(child)


class _TrainingLoss(nn.Module):
    """Makes ``method.training_loss`` the ``forward`` DDP hooks its gradient averaging on."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: Any, class_embeddings: torch.Tensor) -> dict[str, Any]:
        return self.method.training_loss(batch, class_embeddings)


def training_loss_fn(method: nn.Module, device: torch.device) -> Callable[[Any, torch.Tensor], dict[str, Any]]:
    """``method.training_loss`` itself in one process; through DDP (pooled BatchNorm) when distributed
    (the loss stays a scalar; each rank sees its ``[B / world, ...]`` slice of the batch).

    Call before building the optimiser (the parameters are kept; only BatchNorm modules are swapped).
    """
    if not is_distributed():
        return method.training_loss
    _pool_batchnorm(method)
    ids = [device.index or 0] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(_TrainingLoss(method), device_ids=ids, static_graph=True)

