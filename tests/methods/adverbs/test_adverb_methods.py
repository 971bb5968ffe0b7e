"""Video-adverb methods: losses, batched scoring, the registry, published protocol details."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lowshot.extract.text import HashTextEncoder
from lowshot.methods.adverbs.base import (
    VocabText,
    build_method,
    make_batch,
    predict_adverb_scores,
)
from lowshot.protocols.adverbs import load_adverb_data

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(synth_root: Path):
    data = load_adverb_data(synth_root, "vatex", features_root=synth_root, trust_pickle=True)
    text = VocabText(HashTextEncoder(dim=8).encode, data.vocab.adverbs, data.vocab.actions)
    return data, text


SMALL = {"emb_dim": 8, "heads": 2, "layers_gated": 2, "layers_residual": 2}


METHODS = [
    ("adverbs.regada", SMALL),
    ("adverbs.tirg", {"emb_dim": 8, "heads": 2}),
    ("adverbs.ac_cls", {"heads": 2, "d_k": 8, "hidden": [8]}),
    ("adverbs.ac_reg", {"heads": 2, "d_k": 8, "hidden": [8]}),
    ("adverbs.action_modifier", {"heads": 2, "d_k": 8, "adverb_start": 0}),
]


@pytest.mark.parametrize(("name", "model"), METHODS)
def test_methods_train_step_and_batched_scores(tiny_data, name: str, model: dict) -> None:
    data, text = tiny_data
    torch.manual_seed(0)
    m = build_method(name, model, data, text, data.train.store.video_dim)
    batch = make_batch(data.train, np.arange(32))
    out = m.training_loss(batch, torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["loss_terms"]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    # batched evaluation == per-row evaluation; no-action scores == max over action queries
    m.eval()
    gt, no_act = predict_adverb_scores(
        m, data.test, data.vocab.n_actions, batch_size=7, no_action_gt=True
    )
    one = make_batch(data.test, np.array([5]))
    cache = m.eval_cache()
    with torch.no_grad():
        row = m.action_scores(one, one.actions, cache)
        per_action = torch.stack(
            [m.action_scores(one, torch.tensor([v]), cache) for v in range(data.vocab.n_actions)]
        )
    assert np.allclose(gt[5], row[0].double().numpy(), atol=1e-5)
    assert np.allclose(no_act[5], per_action.max(0).values[0].double().numpy(), atol=1e-5)


def test_regada_scores_are_cosine_of_pair_embeddings(tiny_data) -> None:
    data, text = tiny_data
    m = build_method("adverbs.regada", SMALL, data, text, data.train.store.video_dim).eval()
    b = make_batch(data.test, np.arange(4))
    with torch.no_grad():
        o = m.model.video_embeddings(b.video, b.lengths, b.actions)
        t = m.model.text_embeddings()
        want = torch.stack(
            [
                F.cosine_similarity(
                    o[i : i + 1],
                    t[torch.arange(data.vocab.n_adverbs) * data.vocab.n_actions + b.actions[i]],
                )
                for i in range(4)
            ]
        )
        got = m.action_scores(b, b.actions, m.eval_cache())
    assert torch.allclose(got, want, atol=1e-5)


def test_regada_loss_terms_and_no_antonyms(tiny_data) -> None:
    data, text = tiny_data
    torch.manual_seed(0)
    only_reg = build_method(
        "adverbs.regada", SMALL | {"lambda_act": 0.0, "lambda_adv": 0.0}, data, text, 16
    ).eval()
    b = make_batch(data.train, np.arange(16))
    out = only_reg.training_loss(b, torch.Generator().manual_seed(0))
    assert float(out["loss"].detach()) == pytest.approx(out["loss_terms"]["reg"], rel=1e-5)
    # antonym negative is deterministic; without antonyms a random other adverb is drawn
    assert torch.equal(only_reg.antonyms[b.adverbs], torch.as_tensor(data.antonyms)[b.adverbs])
    from lowshot.methods.adverbs.base import antonym_or_random

    rnd = antonym_or_random(b.adverbs, None, data.vocab.n_adverbs, torch.Generator().manual_seed(1))
    assert (rnd != b.adverbs).all() and (rnd < data.vocab.n_adverbs).all()


def test_zero_shot_and_priors_methods(tiny_data) -> None:
    data, text = tiny_data
    zs = build_method("adverbs.s3d_pretrained", {"pooling": "max"}, data, text, 16)
    gt, _ = predict_adverb_scores(zs, data.test, data.vocab.n_actions)
    assert gt.shape == (len(data.test), data.vocab.n_adverbs)
    wrong_dim = VocabText(HashTextEncoder(dim=5).encode, data.vocab.adverbs, data.vocab.actions)
    from lowshot.errors import ConfigError

    with pytest.raises(ConfigError, match="same joint space"):
        predict_adverb_scores(
            build_method("adverbs.clip", {}, data, wrong_dim, 16), data.test, data.vocab.n_actions
        )
    pri = build_method("adverbs.priors", {}, data, None, 0)
    gt, _ = predict_adverb_scores(pri, data.test, data.vocab.n_actions)
    counts = np.zeros((data.vocab.n_adverbs, data.vocab.n_actions))
    np.add.at(counts, (data.train.adverbs, data.train.actions), 1)
    assert np.array_equal(gt, counts[:, data.test.actions].T)


def test_ac_evaluation_batch_effect_is_legacy_only(tiny_data) -> None:
    """Default (masked) scores do not depend on the evaluation batch size; the published
    unmasked evaluation does (a clip attends to padding up to its batch's longest clip)."""
    data, text = tiny_data
    assert len(set(data.test.store.lengths.tolist())) > 1  # variable-length clips
    cfg = {"heads": 2, "d_k": 8, "hidden": [8]}
    for legacy in (False, True):
        torch.manual_seed(0)
        m = build_method("adverbs.ac_cls", cfg | {"legacy_unmasked_eval": legacy}, data, text, 16)
        small, _ = predict_adverb_scores(m, data.test, data.vocab.n_actions, batch_size=5)
        large, _ = predict_adverb_scores(m, data.test, data.vocab.n_actions, batch_size=512)
        assert np.allclose(small, large, atol=1e-6) is not legacy


def test_published_evaluation_batch_size_is_the_default() -> None:
    """air-cvpr23 ``--test_batch 512``: the legacy unmasked evaluation reproduces it only
    with 512-row evaluation batches, so that is the default (masked results ignore it)."""
    from lowshot.recipes.adverbs_config import TrainConfig

    assert TrainConfig().eval_batch_size == 512


def test_ac_reg_delta_without_antonyms_is_published(tiny_data) -> None:
    """--no_antonyms: delta = ||S("v a") - S("v")|| * |cos(S(v), S(a))| (not delta = 1)."""
    from dataclasses import replace

    data, text = tiny_data
    no_ant = replace(data, antonyms=None)
    m = build_method("adverbs.ac_reg", {"heads": 2, "d_k": 8, "hidden": [8]}, no_ant, text, 16)
    a, v = data.vocab.adverbs[1], data.vocab.actions[2]
    s_va, s_v, s_a = text.embed([f"{v} {a}", v, a])
    want = (s_va - s_v).norm() * F.cosine_similarity(s_v, s_a, dim=0).abs()
    assert float(m.delta[1, 2]) == pytest.approx(float(want), rel=1e-5)
    fixed = build_method(
        "adverbs.ac_reg",
        {"heads": 2, "d_k": 8, "hidden": [8], "fixed_delta": True},
        no_ant,
        text,
        16,
    )
    assert torch.equal(fixed.delta, torch.ones_like(fixed.delta))
    # the published target: +delta on the GT adverb only (no -delta without antonyms)
    m.eval()
    b = make_batch(data.train, np.arange(8))
    out = m.training_loss(b, torch.Generator().manual_seed(0))
    with torch.no_grad():
        pred = m.model(b.video, b.lengths, b.actions)
    target = torch.zeros_like(pred)
    target[torch.arange(8), b.adverbs] = m.delta[b.adverbs, b.actions]
    assert out["loss_terms"]["mse"] == pytest.approx(float(F.mse_loss(pred, target)), rel=1e-5)


def test_adverb_registry_entries_are_method_classes() -> None:
    """One kind of METHODS entry, as for the AV methods: a class with a ``Config`` schema."""
    import dataclasses

    from lowshot._registry import METHODS
    from lowshot.errors import ConfigError
    from lowshot.methods.adverbs.base import AdverbMethod, method_class

    names = [n for n in METHODS.names() if n.startswith("adverbs.")]
    assert len(names) == 9  # + adverbs.pseudo_adverbs
    for name in names:
        cls = method_class(name)
        assert issubclass(cls, AdverbMethod) and dataclasses.is_dataclass(cls.Config), name
    assert not method_class("adverbs.priors").needs_text
    with pytest.raises(ConfigError, match="did you mean"):
        method_class("adverbs.regado")
