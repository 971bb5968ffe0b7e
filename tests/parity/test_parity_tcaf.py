"""The TCaF adapter of the parity harness: its data, the lowshot side's options, the numpy shim."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (benchmarks/)

from benchmarks.parity import tcaf, upstream_shim  # noqa: E402
from benchmarks.parity.__main__ import METHODS  # noqa: E402
from benchmarks.parity.data import write_parity_data  # noqa: E402
from benchmarks.parity.harness import Settings  # noqa: E402
from lowshot.config.paper import load_paper_config  # noqa: E402
from lowshot.data.av.datasets import dataset_spec  # noqa: E402
from lowshot.data.av.embeddings import legacy_misaligned, read_embedding_dict  # noqa: E402
from lowshot.data.av.splits import load_class_split  # noqa: E402

FEATURES = "UCF/features/cls_features_non_averaged"


@pytest.mark.data
def test_tcaf_parity_data_is_temporal_with_aligned_keys(shared_data: Path, tmp_path: Path) -> None:
    root = write_parity_data(tmp_path / "d", shared_data, preset=tcaf.PRESET["cls"], size=0.01)
    split = load_class_split(root / "UCF" / "class-split", dataset_spec("UCF"))
    table = read_embedding_dict(root / FEATURES / "text" / "word_embeddings_ucf_normed.npy", True)
    assert not legacy_misaligned(split, table, "fasttext").any()
    for modality in ("audio", "video"):  # the per-class pickles the published dataset reads
        assert any((root / FEATURES / modality / "stage_1_train").iterdir())


def test_tcaf_is_registered_and_every_row_loads() -> None:
    assert METHODS["tcaf"] is tcaf
    st = Settings(split="cls")
    legacy = load_paper_config(tcaf.lowshot_setting(st), list(tcaf.lowshot_overrides("legacy", st)))
    model = legacy["model"]
    assert model["legacy_eval_integer_timesteps"] and model["legacy_train_integer_time_pass"]
    assert model["legacy_bn_over_padding"] and model["input_norm"] == "legacy_tcaf"
    assert legacy["protocol"]["stage2_scheduler"] == "legacy_val_on_train"
    for row in tcaf.ABLATIONS:
        load_paper_config(tcaf.lowshot_setting(st), list(tcaf.lowshot_overrides(row, st)))
    released = tcaf.lowshot_overrides("legacy", Settings(split="cls", keys="released"))
    assert "data.legacy_text_order=true" in released
    with pytest.raises(SystemExit, match="only --split cls"):
        tcaf.lowshot_setting(Settings(split="main"))


def test_ragged_object_arrays_shim_returns_the_numpy_1_20_object_array(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(np, "array", np.array)  # restored after the test
    seqs = [np.zeros((2, 3)), np.ones((5, 3))]
    with pytest.raises(ValueError, match="inhomogeneous"):
        np.array(seqs)
    upstream_shim._ragged_object_arrays()
    out = np.array(seqs)
    assert out.dtype == object and out.shape == (2,) and out[1].shape == (5, 3)
    assert np.array([np.zeros(3), np.ones(3)]).shape == (2, 3)  # regular lists are unchanged
    with pytest.raises(ValueError):
        np.array(seqs, dtype=np.float32)  # an explicit dtype still fails, as in numpy 1.20


def test_pandas_keys_columns_shim_accepts_the_published_test_stats_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    monkeypatch.setattr(pd.DataFrame, "__init__", pd.DataFrame.__init__)  # restored after the test
    keys = {"lr": 1, "bs": 2}.keys()
    upstream_shim._pandas_keys_columns()
    frame = pd.DataFrame(columns=[keys])  # what src.utils.setup_evaluation builds
    assert list(frame.columns) == [str(keys)] and len(frame) == 0
    assert list(pd.DataFrame(columns=["a", "b"]).columns) == ["a", "b"]
