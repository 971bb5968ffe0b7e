"""Pseudo-Adverbs: pseudo-label selection, adaptive thresholds, unlabelled data, a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lowshot.config.paper import load_paper_config
from lowshot.errors import ConfigError, DataError
from lowshot.methods.adverbs.pseudo_adverbs import adaptive_thresholds, pseudo_label
from lowshot.protocols.adverbs import load_adverb_data, with_validation
from lowshot.recipes.adverbs import run_adverbs

pytestmark = pytest.mark.usefixtures("one_thread")

ANTONYMS = torch.tensor([1, 0, 3, 2])  # (0, 1) and (2, 3) are antonym pairs


def test_pseudo_labels_by_antonym_difference_by_hand() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.4], [-1.0, -0.2, -3.0, 0.0]])
    # differences to the antonym: row 0 [0.8, -0.8, 0.1, -0.1]; row 1 [-0.8, 0.8, -3, 3]
    labels, conf = pseudo_label(scores, ANTONYMS, k=2)
    assert labels.tolist() == [[0, 3], [2, 1]]  # [k, N]: rank 0 first
    expected = torch.sigmoid(torch.tensor([[0.8, 3.0], [0.1, 0.8]]))
    torch.testing.assert_close(conf, expected)
    # softmax over (adverb, antonym) == sigmoid of the difference
    torch.testing.assert_close(conf[0, 0], torch.softmax(torch.tensor([0.9, 0.1]), 0)[0])
    # "closest" ranks by the score itself: row 1 -> adverb 3 (0.0) then 1 (-0.2)
    labels, _ = pseudo_label(scores, ANTONYMS, k=2, selection="closest")
    assert labels.tolist() == [[0, 3], [2, 1]]
    labels, _ = pseudo_label(torch.tensor([[0.9, 0.1, 0.95, 0.9]]), ANTONYMS, 1, "closest")
    assert labels.tolist() == [[2]]  # the largest score, although its antonym margin is small
    labels, _ = pseudo_label(torch.tensor([[0.9, 0.1, 0.95, 0.9]]), ANTONYMS, 1, "diff")
    assert labels.tolist() == [[0]]


def test_adaptive_thresholds_by_hand() -> None:
    counts = torch.tensor([3.0, 1.0, 0.0, 0.0])  # mean count per adverb = 1
    sums = torch.tensor([2.4, 0.9, 0.0, 0.0])
    got = adaptive_thresholds(counts, sums, tau=0.6, smoothing=0.5)
    torch.testing.assert_close(got, torch.tensor([2.4, 0.9, 0.0, 0.0]).sqrt() * 0.6)
    # frequent, confident labels get stricter thresholds than rare ones
    assert got[0] > got[1] > got[2]


def test_unlabelled_rows_are_read_only_on_request(synth_root: Path) -> None:
    data = load_adverb_data(synth_root, "vatex", unseen=True, features_root=synth_root,
                            trust_pickle=True, unlabelled=True)  # fmt: skip
    assert data.unlabelled is not None and len(data.unlabelled) > 0
    assert data.unlabelled.store is data.train.store  # merged train + test features
    assert with_validation(data, 0.2, 0).unlabelled is data.unlabelled
    assert load_adverb_data(synth_root, "vatex", unseen=True).unlabelled is None
    with pytest.raises(DataError, match="unseen-composition"):
        load_adverb_data(synth_root, "vatex", unlabelled=True)


def _tiny(name: str, **model) -> dict:
    cfg = load_paper_config(name)
    cfg["data"] |= {"trust_pickle": True, "video_dim": 16, "joint_dim": 8}
    cfg["model"] = (cfg.get("model") or {}) | {"heads": 2, "d_k": 8} | model
    cfg["train"] = {"epochs": 4, "batch_size": 32, "lr": 1e-3, "eval_interval": 2, "seeds": [0]}
    cfg["protocol"] = {"selection": "last"}
    return cfg


def test_pseudo_adverbs_runs_on_the_unseen_split(synth_root: Path, tmp_path: Path) -> None:
    cfg = _tiny("adverbs_baselines.pseudo_adverbs_vatex_unseen", adverb_start=1, pseudo_start=2)
    res = run_adverbs(cfg, tmp_path / "pa", synth_root)
    assert set(res.means()) == {"acc_a_cls"} and 0.0 <= res.means()["acc_a_cls"] <= 1.0
    hist = [json.loads(x) for x in (tmp_path / "pa" / "history.jsonl").read_text().splitlines()]
    assert ["pseudo" in h["train"] for h in hist] == [False, False, True, True, True]
    assert all(0.0 <= h["train"]["pseudo_kept"] <= 1.0 for h in hist[2:])
    assert res.expected == {"acc_a_cls": 53.8}


def test_pseudo_adverbs_needs_unlabelled_antonyms_and_a_valid_k(
    synth_root: Path, tmp_path: Path
) -> None:
    cfg = _tiny("adverbs_baselines.pseudo_adverbs_vatex_unseen", k=7)  # 6 adverbs
    with pytest.raises(ConfigError, match=r"model.k must be in \[1, 6\]"):
        run_adverbs(cfg, tmp_path / "k", synth_root)
    cfg = _tiny("adverbs_baselines.pseudo_adverbs_vatex_unseen")
    cfg["data"]["use_antonyms"] = False
    with pytest.raises(ConfigError, match="needs antonyms"):
        run_adverbs(cfg, tmp_path / "a", synth_root)
    cfg = _tiny("adverbs_baselines.pseudo_adverbs_vatex_unseen")
    cfg["data"]["unseen"] = False
    with pytest.raises(DataError, match="unseen-composition"):
        run_adverbs(cfg, tmp_path / "s", synth_root)


def _history(run: Path) -> list[dict]:
    lines = (run / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in lines]


def test_resume_after_kill_keeps_the_adaptive_thresholds(synth_root: Path, tmp_path: Path) -> None:
    """Thresholds and this epoch's label counts are model state: a resumed run is exact."""
    cfg = _tiny("adverbs_baselines.pseudo_adverbs_vatex_unseen", adverb_start=1, pseudo_start=1)
    cfg["train"] |= {"epochs": 5, "checkpoint_interval": 2}
    full = run_adverbs(cfg, tmp_path / "full", synth_root)
    assert run_adverbs(cfg, tmp_path / "kill", synth_root, stop_after_epoch=3) is None
    resumed = run_adverbs(cfg, tmp_path / "kill", synth_root)
    assert resumed.means() == full.means()
    assert _history(tmp_path / "full") == _history(tmp_path / "kill")


def test_without_the_pseudo_loss_it_is_the_action_modifier(synth_root: Path, tmp_path: Path) -> None:
    pa = _tiny("adverbs_baselines.pseudo_adverbs_vatex_unseen", adverb_start=1, pseudo_start=99)
    am = _tiny("adverbs_baselines.pseudo_adverbs_vatex_unseen", adverb_start=1)
    am["method"] = "adverbs.action_modifier"
    for key in ("k", "selection", "threshold", "adaptive", "smoothing", "unlabelled_ratio",
                "pseudo_start", "pseudo_weight"):  # fmt: skip
        am["model"].pop(key, None)
    a = run_adverbs(pa, tmp_path / "pa", synth_root).means()
    b = run_adverbs(am, tmp_path / "am", synth_root).means()
    assert a == b


def test_pseudo_label_statistics_are_model_state(synth_root: Path) -> None:
    """An epoch's label counts and confidence sums (the next thresholds) are checkpointed."""
    from lowshot.extract.text import HashTextEncoder
    from lowshot.methods.adverbs.base import VocabText, build_method, make_batch

    data = load_adverb_data(synth_root, "vatex", unseen=True, features_root=synth_root,
                            trust_pickle=True, unlabelled=True)  # fmt: skip
    text = VocabText(HashTextEncoder(dim=8).encode, data.vocab.adverbs, data.vocab.actions)
    model = {"heads": 2, "d_k": 8, "adverb_start": 0, "pseudo_start": 0, "smoothing": 1.0}

    def build():
        torch.manual_seed(0)
        return build_method("adverbs.pseudo_adverbs", model, data, text, 16)

    m = build()
    opt = torch.optim.Adam(m.parameters())
    m.on_epoch_start(0, opt, 1e-3)
    m.training_loss(make_batch(data.train, torch.arange(16).numpy()), torch.Generator())
    assert m.label_counts.sum() == 16 * 5  # k labels per unlabelled video
    restored = build()
    restored.load_state_dict(m.state_dict())
    for x in (m, restored):
        x.on_epoch_start(1, opt, 1e-3)
    torch.testing.assert_close(restored.thresholds, m.thresholds)
    assert not torch.allclose(m.thresholds, torch.full_like(m.thresholds, 0.6))


@pytest.mark.data
@pytest.mark.parametrize(
    ("dataset", "rows", "pairs"),
    [("activitynet", 634, 168), ("msrvtt", 306, 114), ("vatex", 3317, 537)],
)
def test_released_unlabelled_splits(shared_data: Path, dataset: str, rows: int, pairs: int) -> None:
    """The released unlabelled.csv files (reference/adverbs.md 1.1): sizes, pair counts, and no
    unlabelled composition is a training composition."""
    data = load_adverb_data(shared_data / "adverbs", dataset, unseen=True, unlabelled=True)
    u, tr = data.unlabelled, data.train
    assert len(u) == rows
    assert len(set(zip(u.adverbs.tolist(), u.actions.tolist()))) == pairs
    assert not set(zip(u.adverbs.tolist(), u.actions.tolist())) & set(
        zip(tr.adverbs.tolist(), tr.actions.tolist())
    )
