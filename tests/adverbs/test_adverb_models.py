"""ReGaDa and baseline architectures: equations, masks, ablation switches, batched scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lowshot.benchmarks.adverbs import load_adverb_data
from lowshot.extract.text import HashTextEncoder
from lowshot.layers.attention import SlicedQueryAttention
from lowshot.methods.adverbs.base import (
    VocabText,
    build_method,
    make_batch,
    predict_adverb_scores,
)
from lowshot.models.adverbs.baselines import (
    ACModel,
    ACNetConfig,
    ActionModifierModel,
    ActionModifierNetConfig,
)
from lowshot.models.adverbs.regada import (
    ReGaDa,
    ReGaDaNetConfig,
    ResidualGatedComposer,
    TIRGComposer,
)

A, V, DT, DX = 4, 3, 8, 12


def _regada(**kw) -> ReGaDa:
    torch.manual_seed(0)
    pair_emb = kw.pop("pair_emb", None)
    cfg = ReGaDaNetConfig(emb_dim=8, heads=2, layers_gated=2, layers_residual=2, **kw)
    return ReGaDa(torch.randn(A, DT), torch.randn(V, DT), DX, cfg, pair_emb=pair_emb)


def _composer(
    dim: int, n_gated: int, n_residual: int, dropout: float, **kw
) -> ResidualGatedComposer:
    cfg = ReGaDaNetConfig(
        emb_dim=dim, layers_gated=n_gated, layers_residual=n_residual, text_dropout=dropout, **kw
    )
    return ResidualGatedComposer(cfg)


def test_regada_shapes_and_padding_invariance() -> None:
    m = _regada().eval()
    assert m.text_embeddings().shape == (A * V, 8)
    x = torch.randn(2, 3, DX)
    lengths = torch.tensor([3, 2])
    x[1, 2] = 0
    padded = torch.cat([x, torch.randn(2, 4, DX)], dim=1)  # garbage beyond the true length
    a = m.video_embeddings(x, lengths, torch.tensor([0, 2]))
    b = m.video_embeddings(padded, lengths, torch.tensor([0, 2]))
    assert a.shape == (2, 8) and torch.allclose(a, b, atol=1e-6)
    assert (a >= 0).all()  # the projection MLP ends in ReLU


def test_gate_equation_6_1() -> None:
    torch.manual_seed(0)
    c = _composer(4, 2, 2, 0.0).eval()
    main, aux = torch.randn(5, 4), torch.randn(5, 4)
    x = torch.cat([main, aux], -1)
    want = c.w_gate * torch.sigmoid(c.gate(x)) * main + c.w_res * c.res(x)
    assert torch.allclose(c(main, aux), want)
    no_res = _composer(4, 2, 2, 0.0, residual=False).eval()
    assert no_res.res is None
    assert torch.allclose(no_res(main, aux), torch.sigmoid(no_res.gate(x)) * main)
    lin = _composer(4, 2, 2, 0.0, sigmoid=False).eval()
    assert torch.allclose(lin(main, aux), lin.gate(x) * main + lin.res(x))
    shared = _composer(4, 2, 2, 0.0, shared_weights=True).eval()
    g = shared.gate(x)
    assert shared.res is None and torch.allclose(shared(main, aux), torch.sigmoid(g) * main + g)
    # gated MLP structure: BN, (N-1) x [Linear, Dropout, LeakyReLU], Linear
    kinds = [type(mod).__name__ for mod in c.gate]
    assert kinds == ["BatchNorm1d", "Linear", "Dropout", "LeakyReLU", "Linear"]
    t = TIRGComposer(4)
    assert float(t.w_gate.detach()) == 1.0 and float(t.w_res.detach()) == 10.0


def test_text_inputs_ablation() -> None:
    base = _regada().eval().text_embeddings()
    swapped = _regada(main="action", aux="adverb").eval().text_embeddings()
    assert not torch.allclose(base, swapped)
    with pytest.raises(ValueError, match="phrase"):
        _regada(main="composition")
    comp = _regada(main="composition", pair_emb=torch.randn(A * V, DT)).eval()
    assert comp.text_embeddings().shape == (A * V, 8)
    with pytest.raises(ValueError, match="differ"):
        _regada(main="action", aux="action")


def test_ac_padding_mask_and_legacy_eval() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8)
    padded = torch.cat([x, torch.zeros(1, 5, 8)], dim=1)
    lengths = torch.tensor([3])
    for legacy, same in ((False, True), (True, False)):
        cfg = ACNetConfig(heads=2, d_k=8, hidden=(8,), legacy_unmasked_eval=legacy)
        m = ACModel(torch.randn(V, 8), A, 8, cfg).eval()
        a, b = m(x, lengths, torch.tensor([1])), m(padded, lengths, torch.tensor([1]))
        assert torch.allclose(a, b, atol=1e-6) is same
    cfg = ACNetConfig(heads=2, d_k=8, hidden=(8,), legacy_zero_value_padding_mask=True)
    zero_row = ACModel(torch.randn(V, 8), A, 8, cfg).eval()
    assert torch.allclose(
        zero_row(x, lengths, torch.tensor([0])),
        zero_row(padded, torch.tensor([8]), torch.tensor([0])),
    )


def test_sliced_attention_drops_attention_weights_in_training_only() -> None:
    """Published SDPAttention applies dropout 0.1 to the attention weights (train mode)."""
    torch.manual_seed(0)
    attn = SlicedQueryAttention(8, 8, 2, 8, 8, dropout=0.1)
    x, q, valid = torch.randn(64, 6, 8), torch.randn(64, 8), torch.ones(64, 6, dtype=torch.bool)
    assert not torch.allclose(attn.train()(x, q, valid), attn(x, q, valid))
    attn.eval()
    assert torch.equal(attn(x, q, valid), attn(x, q, valid))
    for model in (
        ACModel(torch.randn(V, 8), A, 8, ACNetConfig(heads=2, d_k=8, hidden=(8,), dropout=0.3)),
        ActionModifierModel(torch.randn(V, 8), A, 8, ActionModifierNetConfig(heads=2, d_k=8)),
    ):
        assert model.attn.drop.p == (0.3 if isinstance(model, ACModel) else 0.1)  # published


def test_legacy_padding_mask_tests_channel_zero() -> None:
    """Published: a step is padding when its feature channel 0 is zero (not the whole row)."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8)
    x[0, 1, 0] = 0.0  # a real step whose channel 0 happens to be zero (e.g. after a ReLU)
    without_step = x[:, [0, 2, 3]]
    emb = torch.randn(V, 8)
    for legacy in (False, True):
        torch.manual_seed(0)
        cfg = ACNetConfig(heads=2, d_k=8, hidden=(8,), legacy_zero_value_padding_mask=legacy)
        m = ACModel(emb, A, 8, cfg)
        m.eval()
        full = m(x, torch.tensor([4]), torch.tensor([1]))
        dropped = m(without_step, torch.tensor([3]), torch.tensor([1]))
        assert torch.allclose(full, dropped, atol=1e-6) is legacy


def test_action_modifier_starts_at_identity() -> None:
    emb = torch.randn(V, 8)
    m = ActionModifierModel(emb, A, 8, ActionModifierNetConfig(heads=2, d_k=8))
    assert torch.allclose(
        m.pair_embeddings(torch.tensor([0, 3]), torch.tensor([1, 2])), torch.relu(emb[[1, 2]])
    )
    assert m.all_adverb_embeddings(torch.tensor([0])).shape == (1, A, 8)


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


@pytest.mark.parametrize(
    "kw", [{}, {"residual": False}, {"shared_weights": True}, {"sigmoid": False}]
)
def test_indexed_composer_equals_expanded(kw: dict) -> None:
    """The gathered first layer gives the expanded computation: outputs, grads, BN stats."""
    torch.manual_seed(0)
    ref = _composer(4, 3, 2, 0.5, **kw)
    fast = _composer(4, 3, 2, 0.5, **kw)
    fast.load_state_dict(ref.state_dict())
    main_t, aux_t = torch.randn(3, 4, requires_grad=True), torch.randn(5, 4, requires_grad=True)
    pairs = torch.arange(15)
    mi, ai = pairs // 5, pairs % 5
    torch.manual_seed(1)
    a = ref(main_t[mi], aux_t[ai])
    torch.manual_seed(1)
    b = fast.forward_indexed(main_t, mi, aux_t, ai)
    assert torch.allclose(a, b, atol=1e-5)
    ga = torch.autograd.grad(a.square().sum(), [main_t, *ref.parameters()], allow_unused=True)
    gb = torch.autograd.grad(b.square().sum(), [main_t, *fast.parameters()], allow_unused=True)
    for x, y in zip(ga, gb):
        assert (x is None and y is None) or torch.allclose(x, y, atol=1e-4)
    for (n, x), (_, y) in zip(ref.named_buffers(), fast.named_buffers()):
        assert torch.allclose(x.float(), y.float(), atol=1e-6), n
    ref.eval(), fast.eval()
    assert torch.allclose(
        ref(main_t[mi], aux_t[ai]), fast.forward_indexed(main_t, mi, aux_t, ai), atol=1e-5
    )


def test_parameter_count_matches_published_air_model() -> None:
    """Reference §7.4: 5.8 M trainable parameters with main_air (frozen embeddings excluded)."""
    air = ReGaDaNetConfig(layers_gated=4, layers_residual=3)
    m = ReGaDa(torch.randn(10, 512), torch.randn(48, 512), 1024, air)
    n = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert round(n / 1e6, 1) == 5.8
    bigger_vocab = ReGaDa(torch.randn(34, 512), torch.randn(135, 512), 1024, air)
    assert sum(p.numel() for p in bigger_vocab.parameters() if p.requires_grad) == n


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


def test_every_network_hyperparameter_reaches_its_layer() -> None:
    """Networks take their config object: each field lands where its name says (a
    positional list mis-wired silently when reordered, issue #10)."""
    from lowshot.methods.adverbs.ac_cls import ACConfig
    from lowshot.methods.adverbs.action_modifier import ActionModifierConfig
    from lowshot.methods.adverbs.regada import ReGaDaConfig
    from lowshot.methods.adverbs.tirg import TIRGConfig
    from lowshot.models.adverbs.regada import VideoEncoderConfig

    # hyperparameters are declared once: method configs extend the network configs
    assert issubclass(ReGaDaConfig, ReGaDaNetConfig) and issubclass(TIRGConfig, VideoEncoderConfig)
    assert issubclass(ACConfig, ACNetConfig)
    assert issubclass(ActionModifierConfig, ActionModifierNetConfig)
    cfg = ReGaDaConfig(
        emb_dim=12, heads=3, video_layers=4, video_dropout=0.25, text_dropout=0.4,
        layers_gated=5, layers_residual=2, main="action", aux="adverb", sigmoid=False,
    )  # fmt: skip
    m = ReGaDa(torch.randn(A, DT), torch.randn(V, DT), DX, cfg)
    assert (m.video.attn.heads, m.video.attn.head_dim, m.video.attn.drop.p) == (3, 4, 0.25)
    proj = [type(x).__name__ for x in m.video.proj]
    assert proj.count("Linear") == 4 and proj.count("Dropout") == 3
    assert all(d.p == 0.25 for d in m.video.proj if isinstance(d, torch.nn.Dropout))
    gate = m.composer.gate
    assert sum(isinstance(x, torch.nn.Linear) for x in gate) == 5
    assert sum(isinstance(x, torch.nn.Linear) for x in m.composer.res) == 2
    assert all(d.p == 0.4 for d in gate if isinstance(d, torch.nn.Dropout))
    assert (m.main, m.aux, m.composer.sigmoid, m.composer.residual) == (
        "action",
        "adverb",
        False,
        True,
    )
    assert m.proj_main.out_features == 12
    ac = ACModel(torch.randn(V, 8), A, 16, ACConfig(heads=2, d_k=6, hidden=(5, 7), dropout=0.2))
    assert (ac.attn.heads, ac.attn.k_head, ac.attn.drop.p) == (2, 3, 0.2)
    assert [x.out_features for x in ac.rho if isinstance(x, torch.nn.Linear)] == [5, 7, A]
    am = ActionModifierModel(
        torch.randn(V, 8), A, 16, ActionModifierConfig(heads=4, d_k=8, dropout=0.3)
    )
    assert (am.attn.heads, am.attn.k_head, am.attn.drop.p) == (4, 2, 0.3)


def test_adverb_registry_entries_are_method_classes() -> None:
    """One kind of METHODS entry, as for the AV methods: a class with a ``Config`` schema."""
    import dataclasses

    from lowshot._registry import METHODS
    from lowshot.errors import ConfigError
    from lowshot.methods.adverbs.base import AdverbMethod, method_class

    names = [n for n in METHODS.names() if n.startswith("adverbs.")]
    assert len(names) == 8
    for name in names:
        cls = method_class(name)
        assert issubclass(cls, AdverbMethod) and dataclasses.is_dataclass(cls.Config), name
    assert not method_class("adverbs.priors").needs_text
    with pytest.raises(ConfigError, match="did you mean"):
        method_class("adverbs.regado")
