"""``lowshot data synth | convert | inspect``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowshot.cli.main import main


def test_synth_inspect_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    assert (
        main(
            [
                "data",
                "synth",
                str(src),
                "--preset",
                "clipclap",
                "--dataset",
                "UCF",
                "--seed",
                "1",
                "--size",
                "0.01",
            ]
        )
        == 0
    )
    assert (
        src
        / "UCF"
        / "features"
        / "cls_features_non_averaged"
        / "text"
        / "wavcaps_word_embeddings_ucf_normed.npy"
    ).is_file()
    # the released pickles hold only data: read by the restricted unpickler, no trust needed
    assert main(["data", "inspect", str(src), "UCF", "cls_features_non_averaged"]) == 0
    text = capsys.readouterr().out
    assert "clap 1024-d" in text and "clip 512-d" in text and "stage_2_test_unseen" in text
    assert "cls_split classes:" in text and "stage_2_test_unseen 6" in text
    args = [
        "data",
        "convert",
        str(src),
        "UCF",
        "cls_features_non_averaged",
        str(out),
        "--split",
        "cls",
    ]
    assert main(args) == 0
    assert main(["data", "inspect", str(out), "UCF", "cls_features_non_averaged"]) == 0
    assert "(converted, vector)" in capsys.readouterr().out


def test_bad_preset_is_rejected_by_argparse() -> None:
    with pytest.raises(SystemExit):
        main(["data", "synth", "x", "--preset", "nope"])


def test_inspect_h5_tree_without_trust(synth_tree, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "inspect", str(synth_tree("main_averaged")), "UCF", "main_features"]) == 0
    out = capsys.readouterr().out
    assert "(released, averaged)" in out and "selavi 512-d" in out
    assert "word_embeddings_ucf_normed.npy: 300-d, 101 entries (fasttext)" in out
