"""Cheap fingerprints of the data a run reads, to refuse resuming a run on other data.

A fingerprint is a mapping ``section -> {item: value}``: small files (split lists, class
embeddings, manifests) by SHA-256, large feature files by size only (hashing GBs at every
start would cost minutes), and in-memory arrays by the SHA-256 of their bytes. Paths are
relative to the data root, so a moved copy of the same data still matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from lowshot.utils.io import sha256_file

Fingerprint = dict[str, dict[str, str | int]]


def files_by_hash(root: Path, folder: Path) -> dict[str, str]:
    """``relative path -> SHA-256`` of every file under ``folder``."""
    return {str(p.relative_to(root)): sha256_file(p) for p in _files(folder)}


def files_by_size(root: Path, folder: Path, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, int]:
    """``relative path -> size in bytes`` of every file under ``folder`` (except ``skip``)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in _files(folder) if not skip(p)}


def array_hash(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _files(folder: Path) -> Iterable[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).is_dir() else []


def describe_changes(old: Fingerprint, new: Fingerprint, limit: int = 3) -> list[str]:
    """Human-readable differences, e.g. ``"class_split: UCF/class-split/cls_split/stage_1_train.txt differs"``."""
    changes = []
    for section in sorted(set(old) | set(new)):
        before, after = old.get(section, {}), new.get(section, {})
        diffs = [
            f"{k} {'is new' if k not in before else 'is gone' if k not in after else 'differs'}"
            for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)
        ]
        if diffs:
            more = f" (and {len(diffs) - limit} more)" if len(diffs) > limit else ""
            changes.append(f"{section}: {', '.join(diffs[:limit])}{more}")
    return changes


__all__ = ["Fingerprint", "files_by_hash", "files_by_size", "array_hash", "describe_changes"]
