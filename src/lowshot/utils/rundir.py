"""Run directories: resolved config, git revision, environment, history, results.

Layout of a run directory::

    run/
      config.yaml        resolved config (after overrides)
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

import yaml

from lowshot.config.schema import to_dict
from lowshot.utils.io import atomic_write_json, read_json


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
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "checkpoints").mkdir(exist_ok=True)

    def write_config(self, config: Any) -> None:
        """Save the resolved config; a resumed run must have the same config."""
        from lowshot.utils.io import atomic_write_text

        text = yaml.safe_dump(to_dict(config), sort_keys=False)
        target = self.path / "config.yaml"
        if target.exists() and target.read_text(encoding="utf-8") != text:
            from lowshot.errors import ConfigError

            raise ConfigError(
                f"{target} holds a different config; resume with the same config or use a new run dir"
            )
        atomic_write_text(target, text)
        atomic_write_json(self.path / "env.json", environment())

    @property
    def history_path(self) -> Path:
        return self.path / "history.jsonl"

    def append_history(self, record: dict[str, Any]) -> None:
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
        atomic_write_json(self.path / name, result)

    def result(self, name: str = "result.json") -> dict[str, Any] | None:
        p = self.path / name
        return read_json(p) if p.exists() else None
