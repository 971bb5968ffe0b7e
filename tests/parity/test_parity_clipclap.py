"""The ClipClap adapter of the parity harness: its data variant and the lowshot side's options."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (benchmarks/)

from benchmarks.parity import clipclap  # noqa: E402
from benchmarks.parity.__main__ import METHODS  # noqa: E402
from benchmarks.parity.data import write_parity_data  # noqa: E402
from benchmarks.parity.harness import Settings  # noqa: E402
from lowshot.config.paper import load_paper_config  # noqa: E402
from lowshot.data.av.datasets import dataset_spec  # noqa: E402
from lowshot.data.av.embeddings import legacy_misaligned, read_embedding_dict  # noqa: E402
from lowshot.data.av.splits import load_class_split  # noqa: E402

TEXT = "UCF/features/cls_features_non_averaged/text"


@pytest.mark.data
def test_aligned_clipclap_keys_make_the_published_row_order_correct(shared_data: Path, tmp_path: Path) -> None:
    root = write_parity_data(tmp_path / "d", shared_data, preset=clipclap.PRESET["cls"], size=0.01)
    split = load_class_split(root / "UCF" / "class-split", dataset_spec("UCF"))
    for kind, stem in (("clip", "word_embeddings_ucf_normed"), ("clap", "wavcaps_word_embeddings_ucf_normed")):
        table = read_embedding_dict(root / TEXT / f"{stem}.npy", True)
        assert not legacy_misaligned(split, table, kind).any()
        # the published code maps each dict key through ucf_clip_class_names.csv
        with (root / "UCF/class-split/ucf_clip_class_names.csv").open(newline="") as f:
            clip_names = {row["clip_class_name"] for row in csv.DictReader(f)}
        assert set(table) == clip_names


def test_clipclap_is_registered_and_its_legacy_options_load() -> None:
    assert METHODS["clipclap"] is clipclap
    st = Settings(split="cls")
    config = load_paper_config(clipclap.lowshot_setting(st), list(clipclap.lowshot_overrides("legacy", st)))
    assert config["model"]["legacy_train_extra_pass"] is True
    assert config["protocol"]["stage2_scheduler"] == "legacy_val_on_train"
    with pytest.raises(SystemExit, match="only --split cls"):
        clipclap.lowshot_setting(Settings(split="main"))
