"""``lowshot lowshot-curve`` end to end: AVCA, TCaF, ClipClap and AV-Diff on one synthetic UCF
partition, one table and one plot (issue 12 done-when; tiny training, so no accuracy is claimed)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lowshot.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "train.epochs=1", "train.n_batches=2", "train.progress=false", "avdiff:protocol.epochs_fine_tune=1",
    "tcaf:model.depth=1", "tcaf:model.dim=32", "tcaf:model.heads=2",
    "avdiff:model.dim=32", "avdiff:model.depth=2", "avdiff:model.attention_switch=1", "avdiff:model.heads=2",
]  # fmt: skip


@pytest.mark.slow
def test_curve_of_the_four_methods_writes_table_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "curve"
    args = ["lowshot-curve", "avca", "tcaf", "clipclap", "avdiff", "--dataset", "ucf", "--synthetic-size", "0.02",
            "--shots", "0", "1", "--seeds", "0", "--out", str(out), "--set", *TINY]  # fmt: skip
    assert main(args) == 0
    with open(out / "curve.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # k = 0 (GZSL) for the three GZSL methods; AV-Diff has no k = 0 point
    assert {(r["method"], r["k"]) for r in rows} == {
        ("avca", "0"), ("avca", "1"), ("tcaf", "0"), ("tcaf", "1"), ("clipclap", "0"), ("clipclap", "1"), ("avdiff", "1")
    }
    assert (out / "curve.png").stat().st_size > 0 and "| avdiff | 1 |" in (out / "curve.md").read_text()
    assert len(list((out / "points").iterdir())) == 7
    capsys.readouterr()
    assert main(args) == 0  # a rerun reuses every finished point
    assert "| avdiff | 1 |" in capsys.readouterr().out
