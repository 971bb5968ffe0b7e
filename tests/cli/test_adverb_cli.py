"""``lowshot adverbs ...`` commands end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lowshot.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.data
def test_priors_command_prints_table_6_2(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["adverbs", "priors", "--splits", str(shared_data / "adverbs")]) == 0
    out = capsys.readouterr().out
    assert "| vatex (ours)                 |     0.216 |     0.086 |     0.752 |" in out
    assert "| vatex (Table 6.2)            |     0.216 |     0.086 |     0.752 |" in out


def test_synth_convert_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    assert (
        main(
            [
                "adverbs",
                "synth",
                str(root),
                "--clips",
                "120",
                "--video-dim",
                "8",
                "--joint-dim",
                "4",
            ]
        )
        == 0
    )
    feats = (
        root / "features" / "VATEX_Adverbs" / "s3d" / "ht1m_init" / "stack_size=16_freq=1" / "rgb"
    )
    # without trust: a clean error, exit code 2
    assert main(["adverbs", "convert", str(feats / "train.pth")]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    for part in ("train", "test"):
        assert main(["adverbs", "convert", str(feats / f"{part}.pth"), "--trust-pickle"]) == 0
    w = root / "features" / "s3d" / "s3d_howto100m.pth"
    assert main(["adverbs", "convert", str(w), "--trust-pickle"]) == 0
    assert w.with_suffix(".safetensors").exists()
    # train from converted (safe) files only: no trust flag anywhere
    args = ["adverbs", "train", "regada.vatex", "data.video_dim=8", "data.joint_dim=4",
            "text.weights=features/s3d/s3d_howto100m.safetensors", "train.epochs=1", "train.batch_size=64",
            "model.emb_dim=8", "model.heads=2", "train.num_threads=1",
            "--data-root", str(root), "--run-dir", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "selection = validation-selected epoch (val mean(map_w, map_m, acc_a) on 10%" in out
    assert "refit on train" in out
    assert "| published (Table 6.2 (REGADA, VATEX Adverbs)) |" in out
    assert "| test-selected (published) |" in out


@pytest.mark.slow
def test_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adverbs", "demo", "--out", str(tmp_path), "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    for label in ("Priors", "S3D pre-trained", "AC_CLS", "ReGaDa"):
        assert f"| {label}" in out
    assert "| none (training-free) |" in out and "| validation-selected epoch (val mean" in out
    assert "refit on train |" in out
    assert "test-selected" not in out


def test_text_cache_then_train_without_s3d_weights(synth_root: Path, tmp_path: Path) -> None:
    s3d = synth_root / "features" / "s3d"
    cache = tmp_path / "text.safetensors"
    args = ["adverbs", "text-cache", str(cache), "--splits", str(synth_root), "--dataset", "vatex",
            "--weights", str(s3d / "s3d_howto100m.pth"), "--word-dict", str(s3d / "s3d_dict.npy"), "--trust-pickle"]  # fmt: skip
    assert main(args) == 0
    from lowshot.extract.text import CachedTextEncoder, S3DTextEncoder

    direct = S3DTextEncoder(s3d / "s3d_howto100m.pth", s3d / "s3d_dict.npy", trust_pickle=True)
    assert torch.allclose(
        CachedTextEncoder(cache).encode(["quickly cut"]), direct.encode(["quickly cut"])
    )
    args = ["adverbs", "train", "adverbs_baselines.s3d_pretrained_vatex", "data.video_dim=16", "data.joint_dim=8",
            "data.trust_pickle=true", "text.encoder=adverbs.text_cache", f"text.cache={cache}",
            "--data-root", str(synth_root), "--run-dir", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0


def test_report_tables_state_the_selection_rule(
    synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """md / csv / LaTeX tables of adverb runs: one selection rule per row."""
    common = ["data.video_dim=16", "data.joint_dim=8", "data.trust_pickle=true",
              "--data-root", str(synth_root)]  # fmt: skip
    assert main(["adverbs", "train", "adverbs_baselines.priors_vatex", *common,
                 "--run-dir", str(tmp_path / "priors")]) == 0  # fmt: skip
    assert main(["adverbs", "train", "adverbs_baselines.ac_cls_air", "data.dataset=vatex",
                 "train.epochs=2", "train.eval_interval=1", "model.heads=2", "model.d_k=8",
                 "model.hidden=[8]", "train.num_threads=1", "protocol.selection=best_per_metric",
                 *common, "--run-dir", str(tmp_path / "ac")]) == 0  # fmt: skip
    capsys.readouterr()
    runs = [str(tmp_path / "priors"), str(tmp_path / "ac")]
    assert main(["report", *runs, "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert md.splitlines()[0] == "| run | map_w | map_m | acc_a | selection |"
    assert "| none (training-free) |" in md  # Priors and its (exactly reproduced) paper row
    assert md.count("test-selected (published)") == 2  # legacy run + the paper's AC_CLS row
    assert main(["report", *runs, "--format", "csv"]) == 0
    csv_out = capsys.readouterr().out
    assert csv_out.splitlines()[0].endswith(",selection")
    assert main(["report", *runs, "--format", "latex", "--no-reference"]) == 0
    tex = capsys.readouterr().out
    assert "& selection" in tex and "none (training-free)" in tex
