"""Verified, resumable checkpoints of an epoch loop: safetensors + checksummed JSON commits.

A :class:`CheckpointChain` named ``stage1`` in ``checkpoints/`` keeps::

    stage1_epoch004.safetensors   state after the latest committed epoch
    stage1.json                   its commit record: epoch, file name, size, SHA-256, loop state
    stage1_epoch003.safetensors   state after the epoch before
    stage1.prev.json              its commit record (the fallback)

A commit writes the tensors first, then the previous record, then the new record (each
atomically), then deletes every ``stage1_epoch*.safetensors`` neither record names. A kill
at any point therefore leaves at least one complete, verifiable commit. On resume the
latest record is verified (JSON readable, file present, size and SHA-256 equal, tensors
readable); if it fails the previous one is used, and if that fails too the resume stops
with a message naming each file and what is wrong with it. Once the run's result is written
the chain is no longer needed to resume; :meth:`CheckpointChain.discard` removes it.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lowshot.errors import LowshotError
from lowshot.utils.io import (
    CorruptFileError,
    atomic_write_json,
    load_state,
    read_json,
    remove_orphan_temps,
    save_state,
    sha256_file,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
RECORD_KEYS = ("epoch", "checkpoint", "size", "sha256", "state")


class CheckpointError(LowshotError):
    """No committed checkpoint of a run can be verified, so the run cannot resume."""


class CheckpointChain:
    """The latest and the previous commit of one resumable loop in ``directory``.

    Args:
        directory: the checkpoint folder (created on the first commit).
        name: file-name stem of this loop (``stage1``).
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = Path(directory)
        self.name = name
        self._last: dict[str, Any] | None = None  # the latest verified record

    @property
    def latest_path(self) -> Path:
        """The record of the latest commit, ``<directory>/<name>.json``."""
        return self.directory / f"{self.name}.json"

    @property
    def previous_path(self) -> Path:
        """The record of the commit before it, ``<directory>/<name>.prev.json``."""
        return self.directory / f"{self.name}.prev.json"

    def commit(self, epoch: int, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        """Make ``epoch`` durable: its tensors (flat name -> tensor, any shape) and JSON-able loop ``state``.

        Keeps this and the previous commit's checkpoint files and deletes older ones.
        """
        path = self.directory / f"{self.name}_epoch{epoch:03d}.safetensors"
        digest = save_state(path, tensors)
        record = {"epoch": epoch, "checkpoint": path.name, "size": path.stat().st_size, "sha256": digest,
                  "state": copy.deepcopy(state)}  # the caller goes on appending to its lists
        if self._last is not None:
            atomic_write_json(self.previous_path, self._last)
        atomic_write_json(self.latest_path, record)
        keep = {record["checkpoint"], *([self._last["checkpoint"]] if self._last else [])}
        self._last = record
        for old in self.directory.glob(f"{self.name}_epoch*.safetensors"):
            if old.name not in keep:
                old.unlink(missing_ok=True)

    def discard(self) -> None:
        """Delete this loop's commit records and checkpoint files (the run's result is written;
        nothing resumes from them any more). Records go first, so a kill halfway leaves no record
        naming a deleted file."""
        for path in (self.latest_path, self.previous_path, *self.directory.glob(f"{self.name}_epoch*.safetensors")):
            path.unlink(missing_ok=True)
        self._last = None

    def restore(self) -> tuple[int, dict[str, Any], dict[str, torch.Tensor]] | None:
        """(epoch, state, tensors) of the newest verifiable commit; None if nothing was committed.

        Raises:
            CheckpointError: commits exist but none verifies.
        """
        if not self.directory.is_dir():
            return None
        for tmp in remove_orphan_temps(self.directory):
            log.warning("removed %s, left by a run killed while writing it", tmp)
        problems = []
        for path in (self.latest_path, self.previous_path):
            if not path.exists():
                continue
            try:
                record, tensors = self._verify(path)
            except CorruptFileError as err:
                problems.append(str(err))
                log.warning("%s; trying the previous checkpoint", err)
                continue
            self._last = record
            return int(record["epoch"]), dict(record["state"]), tensors
        if problems:
            raise CheckpointError(
                f"cannot resume from {self.directory}: " + "; ".join(problems)
                + f". Delete {self.directory} to restart this seed from scratch, or start a fresh run in a "
                "new --run-dir"
            )
        return None

    def _verify(self, path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        record = read_json(path)
        if not isinstance(record, dict) or any(k not in record for k in RECORD_KEYS):
            raise CorruptFileError(f"{path} is not a commit record (expected keys {list(RECORD_KEYS)})")
        ckpt = self.directory / str(record["checkpoint"])
        if not ckpt.is_file():
            raise CorruptFileError(f"{ckpt}, named by {path.name}, is missing")
        size = ckpt.stat().st_size
        if size != record["size"]:
            raise CorruptFileError(f"{ckpt} has {size} bytes, {path.name} recorded {record['size']} (truncated?)")
        if sha256_file(ckpt) != record["sha256"]:
            raise CorruptFileError(f"{ckpt} does not match the SHA-256 recorded in {path.name} (overwritten?)")
        return record, load_state(ckpt)


__all__ = ["CheckpointChain", "CheckpointError"]
