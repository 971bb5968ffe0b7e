"""The ReGaDa parity harness: its lowshot side on tiny data, the published-side bookkeeping."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from benchmarks.parity import regada
from lowshot.config.schema import load_yaml
from lowshot.extract.text import build_text_encoder

TINY = regada.Settings(epochs=2, eval_interval=1, batch_size=32, n_clips=120, seeds=(0,))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("regada_parity") / "data"
    regada.write_data(root, TINY)
    return root


def test_both_sides_read_the_same_text_embeddings(data_root: Path) -> None:
    saved = torch.load(data_root / "texts.pt", map_location="cpu", weights_only=False)
    cache = build_text_encoder("adverbs.text_cache", path=data_root / "texts.safetensors")
    assert torch.equal(cache.encode(saved["texts"]), saved["embeddings"])
    assert saved["embeddings"].shape[1] == 512  # S3D-shaped text space
    # every word the published code embeds (actions, adverbs, "adverb action" phrases)
    assert saved["texts"] == regada.vocabulary_texts(data_root, TINY.dataset)


@pytest.mark.parametrize("variant", ["legacy", "default", "last"])
def test_lowshot_side_runs_on_tiny_data(data_root: Path, tmp_path: Path, variant: str) -> None:
    row = regada.run_lowshot_seed(variant, data_root, tmp_path, TINY, 0)
    assert set(row.metrics) == set(regada.METRICS)
    assert all(0.0 <= v <= 100.0 for v in row.metrics.values())
    assert all(e in (0, 1, 2) for e in row.epochs.values())
    assert row.s_per_epoch > 0
    assert ("test-selected" in row.extra["selection"]) == (variant == "legacy")
    config = load_yaml(tmp_path / "lowshot" / f"{variant}_s0" / "config.yaml")  # the resolved config
    assert config["train"]["lr"] == TINY.lr and config["text"]["encoder"] == "adverbs.text_cache"
    assert config["model"]["layers_gated"] == 2  # main_vatex hyperparameters


def test_published_row_keeps_the_first_maximum_of_each_metric() -> None:
    recs = [
        {
            "epoch": 0,
            "t_in": 10.0,
            "t_out": 11.0,
            "metrics": {"mAP-W": 0.2, "mAP-M": 0.1, "Acc-A": 0.7},
        },
        {
            "epoch": 5,
            "t_in": 21.0,
            "t_out": 22.0,
            "metrics": {"mAP-W": 0.4, "mAP-M": 0.3, "Acc-A": 0.7},
        },
        {
            "epoch": 10,
            "t_in": 32.0,
            "t_out": 33.0,
            "metrics": {"mAP-W": 0.3, "mAP-M": 0.3, "Acc-A": 0.6},
        },
    ]
    row = regada.published_row(recs, seed=7)
    assert row.metrics == pytest.approx({"map_w": 40.0, "map_m": 30.0, "acc_a": 70.0})
    assert row.epochs == {"map_w": 5, "map_m": 5, "acc_a": 0}
    assert row.s_per_epoch == pytest.approx(2.0)  # (10 + 10) s of training over 10 epochs
    assert row.extra["last"]["acc_a"] == pytest.approx(60.0)


def test_published_overrides_mirror_the_lowshot_settings(tmp_path: Path) -> None:
    ov = regada.published_overrides(tmp_path, tmp_path / "run", TINY, 3)
    assert ov[0] == "+run=main_vatex"
    assert {"seed=3", "max_epochs=2", "eval_interval=1", "batch_size=32", f"lr={TINY.lr}"} <= set(
        ov
    )
    low = regada.lowshot_overrides("legacy", tmp_path, TINY, 3)
    assert {
        "train.epochs=2",
        "train.eval_interval=1",
        "train.batch_size=32",
        f"train.lr={TINY.lr}",
        "train.seeds=[3]",
        "protocol.selection=best_per_metric",
    } <= set(low)
    with pytest.raises(ValueError, match="multiple of eval_interval"):
        regada.Settings(epochs=7, eval_interval=5)


def test_shim_serves_embeddings_in_vocabulary_order(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(regada.SHIM.parent))
    import regada_shim

    path = tmp_path / "texts.pt"
    torch.save({"texts": ["cut", "quickly", "slowly"], "embeddings": torch.eye(3)}, path)
    fake = types.ModuleType("models.text_embedder")
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    monkeypatch.setitem(sys.modules, "models.text_embedder", fake)
    regada_shim._patch_embeddings(path)
    assert torch.equal(
        fake.load_word_embeddings("s3d", ["slowly", "cut"], None), torch.eye(3)[[2, 0]]
    )
    with pytest.raises(KeyError, match="gently"):
        fake.load_word_embeddings("s3d", ["gently"], None)


def test_table_has_one_line_per_seed_and_a_mean() -> None:
    rows = [
        regada.SeedRow(
            s,
            {"map_w": 10.0 + s, "map_m": 5.0, "acc_a": 80.0},
            dict.fromkeys(regada.METRICS, 5),
            1.0,
        )
        for s in (0, 1)
    ]
    text = regada.table([("lowshot legacy", rows)])
    assert text.count("| lowshot legacy |") == 3
    assert "**10.50 ± 0.71**" in text
