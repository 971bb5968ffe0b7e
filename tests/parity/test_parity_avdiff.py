"""The AV-Diff adapter of the parity harness: its k-shot data, the lowshot side, the log parser, shims."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (benchmarks/)

from benchmarks.parity import avdiff, upstream_shim  # noqa: E402
from benchmarks.parity.__main__ import METHODS  # noqa: E402
from benchmarks.parity.harness import Settings, run_lowshot_seed, table  # noqa: E402
from lowshot.config.paper import load_paper_config  # noqa: E402
from lowshot.data.av.datasets import dataset_spec  # noqa: E402
from lowshot.data.av.embeddings import legacy_misaligned, read_embedding_dict  # noqa: E402
from lowshot.data.av.fsl import KSHOT_LISTS, load_kshot_benchmark  # noqa: E402
from lowshot.data.av.splits import load_class_split  # noqa: E402

#: the smallest generated UCF size whose novel classes all have 2 videos (1 shot + 1 test)
TINY = Settings(split="cls", epochs=1, n_batches=1, batch_size=8, seeds=(0,), size=0.05, lr=1e-3, shots=1,
                epochs_fine_tune=1)  # fmt: skip


@pytest.mark.data
def test_avdiff_data_is_the_released_kshot_layout_the_published_code_reads(shared_data: Path,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    root = avdiff.write_data(tmp_path / "data", shared_data, TINY)
    ds = root / "UCF"
    for name in KSHOT_LISTS:  # published src/dataset.py: class-split/<k>-shot/<list>.txt
        assert (ds / "class-split" / "1-shot" / f"{name}.txt").is_file()
    assert (ds / "class-split" / "all_class.txt").is_file() and (ds / "class-split" / "ucf_w2v_class_names.csv").is_file()
    feat = ds / "features" / "1-shot"
    folders = ("stage_1_train_base", "stage_1_train_novel", "stage_1_val_seen", "stage_1_val_novel",
               "stage_2_test_seen", "stage_2_train_novel", "stage_2_train_novel_1", "stage_2_train_novel_2",
               "stage_2_test_novel", "stage_2_test_novel_1", "stage_2_test_novel_2")  # fmt: skip
    for modality in ("audio", "video"):
        for folder in folders:
            assert any((feat / modality / folder).glob("*.pkl")), f"{modality}/{folder}"
    table_ = read_embedding_dict(feat / "text" / "word_embeddings_ucf_normed.npy", True)
    assert not legacy_misaligned(load_class_split(ds / "class-split", dataset_spec("UCF")), table_, "fasttext").any()
    bench = load_kshot_benchmark(root, "UCF", 1, trust_pickle=True, check_table=False)
    novel = bench.folders["stage_2_train_novel"]
    assert len(novel) == len(bench.partition.novel_2)  # one shot per novel class
    assert avdiff.write_data(tmp_path / "data", shared_data, TINY) == root  # a rerun is a no-op


@pytest.mark.data
@pytest.mark.parametrize("variant", ["default", "legacy"])
def test_avdiff_lowshot_side_runs_on_tiny_data_with_the_harness_settings(
    shared_data: Path, tmp_path: Path, variant: str
) -> None:
    root = avdiff.write_data(tmp_path / "data", shared_data, TINY)
    run = tmp_path / "run"
    fast = ("model.diffusion_steps=10", "model.eval_maxlen=20")  # 300 reverse steps, 300-step evaluation: time only
    res = run_lowshot_seed(avdiff.lowshot_setting(TINY), (*avdiff.lowshot_overrides(variant, TINY), *fast), root, run,
                           TINY, 0)  # fmt: skip
    assert all(math.isfinite(v) and 0 <= v <= 100 for v in (res.S, res.U, res.HM, res.ZSL))
    assert res.best_epoch == 0 and res.extra["best_full_epoch"] == 0 and res.s_per_epoch > 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["lr"] == 1e-3 and config["train"]["batch_size"] == 8 and config["train"]["n_batches"] == 1
    assert config["protocol"]["epochs_fine_tune"] == 1 and config["data"]["shots"] == 1
    assert (config["protocol"]["beta_source"] == "last_epoch") == (variant == "legacy")
    assert "| lowshot x | 0 |" in table([("lowshot x", [res])], avdiff.LABELS)
    assert "| B | N | HM | FSL |" in table([], avdiff.LABELS)


def test_avdiff_rows_settings_and_published_command() -> None:
    assert METHODS["avdiff"] is avdiff
    st = Settings(split="cls", epochs=3, epochs_fine_tune=2, n_batches=30, batch_size=64, lr=1e-3)
    assert avdiff.lowshot_setting(st) == "avdiff.ucf_5shot"
    assert avdiff.published_args(st)[:2] == ("--cfg", "config/best/5-shot/best_ucf.yaml")
    flags = st.published_flags()
    assert flags["--epochs"] == 3 and flags["--epochs_fine_tune"] == 2 and flags["--bs"] == 64
    assert "_cls_5shot" not in st.tag() and "_ft2_" in st.tag()
    assert "_cls_1shot_" in Settings(split="cls", shots=1).tag() and "--epochs_fine_tune" not in Settings().published_flags()
    legacy = load_paper_config(avdiff.lowshot_setting(st), list(avdiff.lowshot_overrides("legacy", st)))
    assert legacy["protocol"]["beta_source"] == "last_epoch" and legacy["protocol"]["legacy_beta_zero_search_on_test"]
    assert legacy["model"]["input_norm"] == "legacy_tcaf" and legacy["model"]["legacy_bn_over_padding"]
    for row in avdiff.ABLATIONS:
        load_paper_config(avdiff.lowshot_setting(st), list(avdiff.lowshot_overrides(row, st)))
    with pytest.raises(SystemExit, match="--split cls"):
        avdiff.lowshot_setting(Settings(split="main"))


EVAL_LOG = """INFO - 0:00:01 - Best beta combined: 0.0
                    Seen performance=2.78, Novel performance=10.58, GFSL performance=4.40, FSL performance=18.98
INFO - 0:00:02 - Best beta combined: 0.0
                    Seen performance=2.78, Novel performance=16.35, GFSL performance=4.75, FSL performance=19.03
INFO - 0:00:03 - Best beta combined: 0.0
                    Seen performance=1.59, Novel performance=15.42, GFSL performance=2.88, FSL performance=18.10
INFO - 0:00:07 - Base performance=2.38, Novel performance=14.12, GFSL performance=4.07, FSL performance=18.71
"""
TRAIN_LOG_B = "".join(f"INFO - 0:00:0{i} - TRAIN\tEpoch: {e}/{n}\tIteration: 1\tLoss: 1.0\t\n"
                      for i, (e, n) in enumerate([(0, 3), (1, 3), (2, 3)] + [(0, 2), (1, 2)] * 3))  # fmt: skip


def test_published_logs_are_parsed() -> None:
    res = avdiff.parse_published(EVAL_LOG, TRAIN_LOG_B, 42, 12.5)
    assert (res.S, res.U, res.HM, res.ZSL) == (2.38, 14.12, 4.07, 18.71)
    assert res.best_epoch == 2 and res.extra["best_full_epoch"] == 1 and res.beta == 0.0
    assert res.extra["beta_searched_on_test"] and len(res.extra["per_draw"]) == 3
    with pytest.raises(ValueError, match="Base performance"):
        avdiff.parse_published(EVAL_LOG.rsplit("INFO", 1)[0], TRAIN_LOG_B, 42, 0.0)


def test_cuda_to_cpu_shim_keeps_tensors_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.Tensor, "to", torch.Tensor.to)  # restored after the test
    upstream_shim._cuda_to_cpu()
    x = torch.ones(2)
    for args, kwargs in [(("cuda",), {}), ((torch.device("cuda:0"),), {}), ((), {"device": "cuda"})]:
        assert x.to(*args, **kwargs).device.type == "cpu"
    assert x.to(torch.float64).dtype == torch.float64  # other conversions are unchanged
