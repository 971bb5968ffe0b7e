"""The TCaF adapter of the parity harness: its data, the lowshot side's options, the numpy shim."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (benchmarks/)

from benchmarks.parity import tcaf, upstream_shim  # noqa: E402
from benchmarks.parity.__main__ import METHODS  # noqa: E402
from benchmarks.parity.data import write_parity_data  # noqa: E402
from benchmarks.parity.harness import Settings, run_lowshot_seed  # noqa: E402
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


@pytest.mark.data
@pytest.mark.parametrize("variant", ["default", "legacy"])
def test_tcaf_lowshot_side_runs_on_tiny_data_with_the_lr_and_depth_settings(
    shared_data: Path, tmp_path: Path, variant: str
) -> None:
    st = Settings(split="cls", epochs=1, n_batches=2, batch_size=8, seeds=(0,), size=0.01, lr=3e-4, depth=1)
    root = write_parity_data(tmp_path / "data", shared_data, preset=tcaf.PRESET["cls"], size=st.size)
    run = tmp_path / "run"
    res = run_lowshot_seed(tcaf.lowshot_setting(st), tcaf.lowshot_overrides(variant, st), root, run, st, 0)
    assert all(math.isfinite(v) and 0 <= v <= 100 for v in (res.S, res.U, res.HM, res.ZSL))
    assert res.best_epoch == 0 and res.s_per_epoch > 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["lr"] == 3e-4 and config["model"]["depth"] == 1  # the same values as published


def test_lr_and_depth_reach_the_published_flags_and_the_cache_tag() -> None:
    st = Settings(split="cls", batch_size=64, lr=1e-3, depth=1)
    flags = st.published_flags()
    assert flags["--lr"] == 1e-3 and flags["--transformer_depth"] == 1 and flags["--bs"] == 64
    assert "--lr" not in Settings().published_flags() and "--transformer_depth" not in Settings().published_flags()
    assert "_lr0.001_depth1_" in st.tag() and "_lr" not in Settings().tag()


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_stacked_list_tensors_shim_builds_the_same_tensor(monkeypatch: pytest.MonkeyPatch, dtype: type) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch, "tensor", torch.tensor)  # restored after the test
    rng = np.random.default_rng(0)
    seqs = [(rng.random((3, 4)) * 200).astype(dtype) for _ in range(5)]
    expected = [torch.tensor(seqs), torch.tensor(seqs, dtype=torch.float32)]
    upstream_shim._stacked_list_tensors()
    for want, got in zip(expected, [torch.tensor(seqs), torch.tensor(seqs, dtype=torch.float32)], strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want)
    assert torch.tensor([1, 2]).tolist() == [1, 2]  # other inputs are untouched
    ragged = [np.zeros((2, 3)), np.zeros((4, 3))]
    with pytest.raises((ValueError, TypeError)):
        torch.tensor(ragged)  # still PyTorch's own error
