"""Determinism helpers."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from lowshot.errors import ConfigError


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch Generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(name: str = "auto", where: str = "device") -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; other names are checked to be usable here.

    Raises:
        ConfigError: an unknown device name, or a device this machine does not have (names ``where``).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{where}: unknown device '{name}' (expected auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise ConfigError(
                f"{where}: '{name}' is not available on this machine ({count} CUDA device(s)); use auto or cpu"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{where}: 'mps' is not available on this machine; use auto or cpu")
    elif device.type != "cpu":
        raise ConfigError(f"{where}: unsupported device '{name}' (expected auto, cpu, cuda, cuda:N or mps)")
    return device


def seed_mean_std(
    per_seed: Sequence[Mapping[str, float]], keys: Iterable[str] | None = None, ddof: int = 0
) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each metric over seeds (population std, ``ddof=0``, by default).

    Args:
        per_seed: one mapping metric -> value per seed; a metric is averaged over the seeds
            that report it.
        keys: the metrics, in this order (default: every metric reported, sorted).
        ddof: numpy's delta degrees of freedom (1: sample std, as the parity harness reports;
            0 when there are no more values than ``ddof``).

    Returns:
        ``{metric: {"mean": float, "std": float}}``.
    """
    names = list(keys) if keys is not None else sorted({k for r in per_seed for k in r})
    out = {}
    for name in names:
        values = np.asarray([r[name] for r in per_seed if name in r], dtype=np.float64)
        out[name] = {"mean": float(values.mean()), "std": float(values.std(ddof=ddof)) if len(values) > ddof else 0.0}
    return out
