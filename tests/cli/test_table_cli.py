"""``lowshot table``: dry run, a run on tiny synthetic data in the released layout, resume, collect-only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lowshot.cli.table as table_cli
from lowshot.cli.main import main
from lowshot.data.av.synth import write_synthetic
from lowshot.reports.paper_tables import load_table

TINY = ["train.epochs=1", "train.n_batches=2", "train.batch_size=32", "train.eval_batch_size=256",
        "train.progress=false", "train.num_threads=1", "train.device=cpu"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """UCF-cls averaged features in the released layout (what `lowshot data synth --preset cls_averaged` writes)."""
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root, preset="cls_averaged", dataset="UCF", seed=0, size=0.03)
    return root


def test_dry_run_lists_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "3.1", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for row in load_table("3.1").rows:
        assert f"{row.label}:" in out and all(s in out for s in row.settings.values())
    assert "54 run(s) to do over 18 setting(s); 0 cell(s) without a setting" in out  # every row has its settings
    assert re.search(r"estimated cost: ~\d+\.\d h", out)
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_run_renders_published_beside_ours_and_resumes_by_collecting(
    synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "t"
    args = ["table", "3.1", "--rows", "AVCA", "--columns", "ucf", "activitynet", "--seeds", "42", "43",
            "--data-root", str(synth_root), "--out", str(out), "--set", *TINY]
    calls: list[tuple[str, int]] = []
    real_run = table_cli.run_one

    def counting(setting, seed, *rest):
        calls.append((setting, seed))
        if (setting, seed) == ("avca.ucf_cls", 43) and len(calls) == 2:
            raise KeyboardInterrupt  # killed before seed 43 ran
        return real_run(setting, seed, *rest)

    monkeypatch.setattr(table_cli, "run_one", counting)
    assert main(args) == 130
    assert (out / "avca.ucf_cls" / "seed_42" / "result.json").is_file()
    capsys.readouterr()
    assert main(args) == 0  # restarted: seed 42 is collected, 43 runs
    md = capsys.readouterr().out
    assert calls == [("avca.ucf_cls", 42), ("avca.ucf_cls", 43), ("avca.ucf_cls", 43), ("avca.activitynet_cls", 42)]
    assert re.search(r"\| AVCA \| \d+\.\d\d ± \d+\.\d\d \(63\.15\) \| .* \| \d+\.\d\d ± \d+\.\d\d \(41\.34\) \|", md)
    assert re.search(r"- AVCA / activitynet \(avca\.activitynet_cls\): missing features: .*ActivityNet", md)
    assert (out / "table_3.1.md").read_text() == md

    calls.clear()
    for fmt, needle in (("latex", r"AVCA & "), ("csv", "AVCA,,63.15,")):
        assert main([*args, "--format", fmt]) == 0
        assert needle in capsys.readouterr().out
    assert calls == [("avca.activitynet_cls", 42)] * 2  # finished runs are collected, only the failing cell retried

    assert main(["table", "3.1", "--collect-only", "--seeds", "42", "43", "44", "--rows", "AVCA", "--columns", "ucf",
                 "--out", str(out)]) == 0  # fmt: skip
    md = capsys.readouterr().out
    assert "not run (--collect-only) (seeds 44; shown over 2 seed(s))" in md
    assert len(calls) == 2  # collect-only runs nothing


def test_bad_table_id_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "3.9", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowshot: error: unknown paper table '3.9'") and err.count("\n") == 1
