"""The parity harness (benchmarks/parity): data variants, the lowshot side on tiny data, parsers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (benchmarks/)

from benchmarks.parity import avca  # noqa: E402
from benchmarks.parity.data import write_parity_data  # noqa: E402
from benchmarks.parity.harness import SeedResult, Settings, run_lowshot_seed, table, within_spread  # noqa: E402
from lowshot.data.av.datasets import dataset_spec  # noqa: E402
from lowshot.data.av.embeddings import legacy_misaligned, read_embedding_dict  # noqa: E402
from lowshot.data.av.splits import load_class_split  # noqa: E402

pytestmark = pytest.mark.data


def _misaligned(root: Path) -> np.ndarray:
    split = load_class_split(root / "UCF" / "class-split", dataset_spec("UCF"))
    table_ = read_embedding_dict(root / "UCF/features/main_features/text/word_embeddings_ucf_normed.npy", True)
    return legacy_misaligned(split, table_, "fasttext")


def test_aligned_keys_make_the_published_row_order_correct(shared_data: Path, tmp_path: Path) -> None:
    released = write_parity_data(tmp_path / "released", shared_data, size=0.01, keys="released")
    aligned = write_parity_data(tmp_path / "aligned", shared_data, size=0.01, keys="aligned")
    assert _misaligned(released).sum() == 79  # reference §6.1: 79/101 UCF classes
    assert not _misaligned(aligned).any()
    # same classes, same vectors, same features: only the key names differ
    a = read_embedding_dict(aligned / "UCF/features/main_features/text/word_embeddings_ucf_normed.npy", True)
    r = read_embedding_dict(released / "UCF/features/main_features/text/word_embeddings_ucf_normed.npy", True)
    assert sorted(map(tuple, np.stack(list(a.values())).round(6))) == sorted(
        map(tuple, np.stack(list(r.values())).round(6)))
    h5 = "UCF/features/main_features/audio/stage_1_train/Archery.h5"
    assert (aligned / h5).read_bytes() == (released / h5).read_bytes()


@pytest.mark.parametrize("variant", ["default", "legacy"])
def test_lowshot_side_runs_on_tiny_data(shared_data: Path, tmp_path: Path, variant: str) -> None:
    st = Settings(epochs=1, n_batches=2, batch_size=16, seeds=(0,), size=0.01)
    root = write_parity_data(tmp_path / "data", shared_data, size=st.size, keys=st.keys)
    res = run_lowshot_seed(avca.lowshot_setting(st), avca.lowshot_overrides(variant, st), root,
                           tmp_path / "run", st, 0)
    assert all(math.isfinite(v) and 0 <= v <= 100 for v in (res.S, res.U, res.HM, res.ZSL))
    assert res.best_epoch == 0 and res.s_per_epoch > 0
    assert f"| lowshot {variant} | 0 |" in table([(f"lowshot {variant}", [res])])


def test_published_commands_and_logs_are_parsed(tmp_path: Path) -> None:
    script = tmp_path / "run_scripts" / "UCF-GZSL" / "avca.sh"
    script.parent.mkdir(parents=True)
    script.write_text(
        "#stage 1\npython main.py --feature_extraction_method main_features --epochs 50 --n_batches 500 --AVCA\n"
        "python main.py --feature_extraction_method main_features --epochs 50 --retrain_all --AVCA\n"
        "python get_evaluation.py --load_path_stage_A runs/a_main --load_path_stage_B runs/b_main --AVCA\n"
    )
    cmds = avca.published_commands(tmp_path, Settings())
    assert "--retrain_all" in cmds["stage2"] and "--retrain_all" not in cmds["stage1"]
    assert cmds["eval"][:2] == ["--load_path_stage_A", "runs/a_main"]
    with pytest.raises(ValueError, match="cls_features"):
        avca.published_commands(tmp_path, Settings(split="cls"))
    log = ("INFO - Best beta combined: 0.6000000238418579\nINFO - \n   Seen performance=84.52, "
           "Unseen performance=44.44, GZSL performance=58.26, ZSL performance=44.44 \n")
    r = avca.parse_published_eval(log, 42, 3, 12.0)
    assert (r.S, r.U, r.HM, r.ZSL, r.best_epoch) == (84.52, 44.44, 58.26, 44.44, 3)
    assert r.beta == pytest.approx(0.6)
    assert avca.epoch_seconds("x - 0:00:10 - VALID\tEpoch: 0\nx - 0:00:40 - VALID\tEpoch: 1\n") == 30
    with pytest.raises(ValueError):
        avca.parse_published_eval("crashed", 42, 0, 0.0)


def test_spread_check() -> None:
    pub = [SeedResult(s, 80, u, hm, 40, 0, 1.0, 1.0) for s, u, hm in ((0, 40, 50), (1, 50, 60))]
    inside = [SeedResult(0, 80, 45, 55, 40, 0, 1.0, 1.0)]
    outside = [SeedResult(0, 80, 25, 38, 40, 0, 1.0, 1.0)]
    assert within_spread(pub, inside, "HM") and within_spread(pub, inside, "U")
    assert not within_spread(pub, outside, "HM") and not within_spread(pub, outside, "U")
