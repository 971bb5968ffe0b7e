"""`lowshot sweep`: settings x seeds with run dirs as the single source of truth (issue #13 item 6)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from lowshot.cli.main import main
from lowshot.errors import ConfigError
from lowshot.sweep import plan, sweep

TINY = ["train.epochs=1", "train.n_batches=2", "train.batch_size=16", "train.progress=false",
        "data.synthetic_size=0.02", "model.model_dim=16", "model.hidden_dim=12", "model.out_dim=8"]
SETTING = "demo.clipclap_synthetic"


def _mtimes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("result.json")}


def test_sweep_runs_once_collects_after_and_respects_claims(tmp_path: Path, one_thread) -> None:
    jobs = plan([SETTING], [0, 1, 2], tmp_path, TINY)
    claimed = jobs[2]
    claimed.lock.parent.mkdir(parents=True)
    claimed.lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))  # a live owner
    first = sweep(jobs)
    assert [s for s, _ in first] == ["ran", "ran", "claimed"]
    assert not claimed.run_dir.exists() and not jobs[0].lock.exists()
    assert first[0][1].seeds == (0,) and first[1][1].seeds == (1,)
    before = _mtimes(tmp_path)
    claimed.lock.write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345}))  # owner gone
    second = sweep(jobs)
    assert [s for s, _ in second] == ["done", "done", "ran"]  # finished runs collected, stale lock taken over
    assert all(_mtimes(tmp_path)[p] == t for p, t in before.items())  # nothing rerun
    assert second[0][1] == first[0][1]


def test_unknown_setting_fails_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="no.such"):
        plan([SETTING, "no.such"], [0], tmp_path)
    assert main(["sweep", "no.such", "--runs", str(tmp_path)]) == 2
    assert "no.such" in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_sweep_as_ray_tasks_in_local_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ray = pytest.importorskip("ray", reason="Ray (extra 'scale') is not installed")
    try:
        args = ["sweep", SETTING, "--seeds", "0", "1", "--runs", str(tmp_path), "--ray", "local", "--num-cpus", "2"]
        for kv in TINY:
            args += ["--set", kv]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert out.count("ran ") == 2 and "HM " in out
        before = _mtimes(tmp_path)
        assert main(args) == 0
        assert capsys.readouterr().out.count("done ") == 2 and _mtimes(tmp_path) == before
    finally:
        ray.shutdown()
