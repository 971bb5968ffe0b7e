"""Run directories: resolved config, git revision, environment, history, results.

Layout of a run directory::

    run/
      config.yaml        resolved config (after overrides)
      data_fingerprint.json  what the data looked like (split files, embeddings, feature sizes)
      env.json           git revision, python/torch versions, host, command line
      history.jsonl      one JSON line per epoch and stage (appended, fsync'ed)
      result.json        final result (written last, atomically)
      checkpoints/       safetensors + JSON sidecars
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from lowshot.errors import ConfigError, DataError, LowshotError
from lowshot.utils.fingerprint import Fingerprint, describe_changes
from lowshot.utils.io import (
    atomic_write_json,
    atomic_write_text,
    read_json,
    remove_orphan_temps,
    yaml_text,
)

FINGERPRINT = "data_fingerprint.json"


class RunDirError(LowshotError):
    """A run directory cannot be used (a file, not writable)."""


def check_run_dir(path: Path) -> None:
    """Fail early, with one clear line, when ``path`` cannot hold a run.

    Raises:
        RunDirError: ``path`` is a file, or it (or the folder it would be made in) is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run dir {path} exists and is not a folder; pass another --run-dir")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise RunDirError(f"run dir {path} cannot be made: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "run dir" if existing == path else f"run dir {path} cannot be made:"
        raise RunDirError(f"{what} {existing} is not writable; pass another --run-dir")


def git_revision() -> str | None:
    """The git commit of the lowshot source tree, or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    """What produced a run: lowshot/python/torch/numpy versions, git revision, platform, GPU name, argv."""
    import numpy
    import torch

    import lowshot

    return {
        "lowshot": lowshot.__version__,
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "argv": sys.argv,
    }


class RunDir:
    """A run directory with append-only history and atomic results."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_run_dir(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "checkpoints").mkdir(exist_ok=True)
        remove_orphan_temps(self.path)  # left by a run killed while writing a result or history

    def has_progress(self) -> bool:
        """True once anything was committed (a checkpoint or a result, here or in a seed folder)."""
        patterns = ("checkpoints/*", "*/checkpoints/*", "result.json", "*/result.json")
        return any(p.is_file() for pattern in patterns for p in self.path.glob(pattern))

    def write_config(self, config: Any, fingerprint: Fingerprint | None = None, data_root: Path | None = None) -> None:
        """Save the resolved config (and the data fingerprint); a resumed run must match both.

        A run dir without progress (say, a run rejected before its first epoch) takes the new
        config and data without complaint.

        Raises:
            ConfigError: the run dir holds progress made with another config.
            DataError: the run dir holds progress made on other data (names what changed).
        """
        text = yaml_text(config)
        target = self.path / "config.yaml"
        fp_path = self.path / FINGERPRINT
        if self.has_progress():
            if target.exists() and target.read_text(encoding="utf-8") != text:
                raise ConfigError(
                    f"{target} holds a different config; resume with the same config or use a new run dir"
                )
            if fingerprint is not None and fp_path.exists():
                old = read_json(fp_path)
                changes = describe_changes(old.get("files", {}), fingerprint)
                if changes:
                    raise DataError(
                        f"the data differs from the data {self.path} was started on "
                        f"(root {old.get('root')}): {'; '.join(changes)}. Resume with the original data, "
                        "or start a fresh run in a new --run-dir"
                    )
        atomic_write_text(target, text)
        if fingerprint is not None:
            atomic_write_json(fp_path, {"root": data_root, "files": fingerprint})
        atomic_write_json(self.path / "env.json", environment())

    @property
    def history_path(self) -> Path:
        """The append-only history file, ``<path>/history.jsonl``."""
        return self.path / "history.jsonl"

    def append_history(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one JSON line to the history and fsync it."""
        with open(self.history_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def history(self) -> list[dict[str, Any]]:
        """Read history lines; a torn last line (killed mid-write) is ignored."""
        if not self.history_path.exists():
            return []
        records = []
        for line in self.history_path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return records

    def write_result(self, result: dict[str, Any], name: str = "result.json") -> None:
        """Write ``result`` as JSON to ``<path>/<name>`` atomically."""
        atomic_write_json(self.path / name, result)

    def result(self, name: str = "result.json") -> dict[str, Any] | None:
        """The JSON result ``<path>/<name>``, or None if it was not written.

        Raises:
            CorruptFileError: the file exists but is not valid JSON.
        """
        p = self.path / name
        return read_json(p) if p.exists() else None
