"""ReGaDa and baseline architectures: equations, masks, ablation switches, config wiring."""

from __future__ import annotations

import pytest
import torch

from lowshot.layers.attention import SlicedQueryAttention
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

pytestmark = pytest.mark.usefixtures("one_thread")

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
