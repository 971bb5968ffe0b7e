"""Audio-visual networks: each takes its config object, so every architecture value of a method
config lands in the layer its name says (a positional list mis-wired silently when
reordered, issue #10)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lowshot.methods.av.avca import AVCA, AVCAConfig
from lowshot.methods.av.clipclap import ClipClap, ClipClapConfig
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.methods.base import InputSpec
from lowshot.models.av.avca import AVCANetConfig
from lowshot.models.av.clipclap import ClipClapNet, ClipClapNetConfig
from lowshot.models.av.tcaf import TCaFNetConfig

D_A, D_V, D_W = 6, 10, 14


def _layers(block: torch.nn.Module) -> list[tuple]:
    """Leaf modules of a block as (kind, detail): Linear sizes, Dropout rate."""
    out = []
    for m in block.modules():
        if isinstance(m, torch.nn.Linear):
            out.append(("Linear", m.in_features, m.out_features))
        elif isinstance(m, torch.nn.Dropout):
            out.append(("Dropout", m.p))
        elif not list(m.children()):
            out.append((type(m).__name__,))
    return out


def _block(d_in: int, d_out: int, p: float) -> list[tuple]:
    return [("Linear", d_in, d_out), ("BatchNorm1d",), ("ReLU",), ("Dropout", p)]


def _names(config: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config)}


#: a distinct value for every TCaF architecture field (no two sizes or rates alike)
TCAF = dict(
    dim=20, encoder_hidden=36, decoder_hidden=28, dim_out=12, pos_dim=6, depth=3, heads=5,
    dim_head=7, mlp_dim=44, fourier_scale=2.5, embedding_dropout=0.11, token_dropout=0.12,
    transformer_dropout=0.13, decoder_dropout=0.14, additional_dropout=0.15,
    attention="self", readout="mean", modalities="both", time_embedding="fourier",
    modality_embedding=False, feed_forward=False, attention_block="tcaf",
)  # fmt: skip


def _tcaf(**kw: object) -> TCaF:
    torch.manual_seed(0)
    return TCaF(TCaFConfig(**{**TCAF, **kw}), InputSpec(D_A, D_V, D_W))


def test_tcaf_hyperparameters_reach_their_layers() -> None:
    # declared once: the method config extends the network config, which TCAF covers fully
    assert issubclass(TCaFConfig, TCaFNetConfig) and _names(TCaFNetConfig) == set(TCAF)
    net = _tcaf(legacy_bn_over_padding=True).net
    for m, d_in in (("audio", D_A), ("video", D_V)):
        assert _layers(net.enc[m]) == _block(d_in, 36, 0.11) + _block(36, 20, 0.11)
        assert _layers(net.token_proj[m]) == [("Linear", 20 + 6, 20)]
    assert net.token_dropout.p == 0.12 and net.pos_dim == 6
    assert net.modality_emb is None and net.cls_token is None
    assert _layers(net.time_emb.proj) == [("Linear", 6, 6)]
    assert net.patterns == ("self",) * 3 and len(net.transformer.layers) == 3
    for layer in net.transformer.layers:
        assert (layer.attn.heads, layer.attn.dim_head) == (5, 7)
        assert _layers(layer.attn.to_qkv) == [("Linear", 20, 3 * 5 * 7)]
        assert _layers(layer.attn.to_out) == [("Linear", 5 * 7, 20), ("Dropout", 0.13)]
        assert layer.ff is None
    assert _layers(net.o_proj) == _block(20, 28, 0.14) + _block(28, 12, 0.14)
    assert _layers(net.d_o) == _block(12, 28, 0.14) + _block(28, D_W, 0.14)
    assert _layers(net.w_proj) == _block(D_W, 12, 0.15)
    assert _layers(net.d_w) == _block(12, D_W, 0.15)
    assert net.bn_over_padding and not _tcaf().net.bn_over_padding


def test_tcaf_switches_reach_their_layers() -> None:
    """The other value of every switch, and the Fourier scale (frequencies scale with it)."""
    net = _tcaf(
        readout="class_token", modalities="audio", attention="full", time_embedding="none",
        modality_embedding=True, feed_forward=True,
    ).net  # fmt: skip
    assert net.modalities == ("audio",) and set(net.enc) == {"audio"}
    assert net.cls_token.shape == (1, 1, 20) and net.time_emb is None
    assert net.patterns == ("full",) * 3
    assert net.modality_emb.weight.shape == (2, 6)
    for layer in net.transformer.layers:
        linears = [x for x in _layers(layer.ff) if x[0] == "Linear"]
        assert linears == [("Linear", 20, 44), ("Linear", 44, 20)]
    freqs = _tcaf().net.time_emb.freqs
    torch.testing.assert_close(freqs, 2.5 * _tcaf(fourier_scale=1.0).net.time_emb.freqs)


#: a distinct value for every ClipClap architecture field
CLIPCLAP = dict(
    model_dim=40, hidden_dim=24, out_dim=10, embedding_dropout=0.11, decoder_dropout=0.12,
    additional_dropout=0.13,
)  # fmt: skip


@pytest.mark.parametrize("modality, d_in", [("both", D_A + D_V), ("audio", D_A), ("visual", D_V)])
def test_clipclap_hyperparameters_reach_their_layers(modality: str, d_in: int) -> None:
    assert issubclass(ClipClapConfig, ClipClapNetConfig) and _names(ClipClapNetConfig) == set(CLIPCLAP)
    net = ClipClap(ClipClapConfig(**CLIPCLAP, modality=modality), InputSpec(D_A, D_V, D_W)).net
    assert _layers(net.o_enc) == _block(d_in, 40, 0.11)
    assert _layers(net.w_enc) == _block(D_W, 40, 0.11)
    assert _layers(net.o_proj) == _block(40, 24, 0.12) + _block(24, 10, 0.12)
    assert _layers(net.w_proj) == _block(40, 10, 0.13)
    assert _layers(net.d_o) == _block(10, 24, 0.12) + _block(24, 40, 0.12)
    assert _layers(net.d_w) == _block(10, 40, 0.13)


def test_gathered_label_rows_equal_encoding_the_rows():
    torch.manual_seed(0)
    cfg = ClipClapNetConfig(embedding_dropout=0.0, additional_dropout=0.0)
    net = ClipClapNet(1536, 1536, cfg).double()
    w = torch.randn(7, 1536, dtype=torch.float64, requires_grad=True)
    rows = torch.tensor([3, 3, 0, 6, 1, 3, 2, 2])
    fast = net.embed_labels(w, rows)
    slow = net.embed_labels(w[rows])
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b)
    (fast[1].sum() + fast[0].square().sum()).backward()
    grad_fast = net.w_enc[0].weight.grad.clone()
    net.zero_grad()
    (slow[1].sum() + slow[0].square().sum()).backward()
    torch.testing.assert_close(grad_fast, net.w_enc[0].weight.grad)


def test_architecture_follows_thesis_section_5_3():
    """Every Linear (the last of O_proj and W_proj included) is followed by BN, ReLU, dropout
    (thesis §5.3; published EmbeddingNet); O_proj and D_o use decoder_dropout, W_proj and D_w
    additional_dropout (published config comments)."""
    cfg = ClipClapNetConfig(
        model_dim=512, hidden_dim=256, out_dim=64, embedding_dropout=0.1, decoder_dropout=0.2, additional_dropout=0.3
    )
    net = ClipClapNet(1536, 1536, cfg)
    assert _layers(net.o_enc) == _block(1536, 512, 0.1)
    assert _layers(net.w_enc) == _block(1536, 512, 0.1)
    assert _layers(net.o_proj) == _block(512, 256, 0.2) + _block(256, 64, 0.2)
    assert _layers(net.w_proj) == _block(512, 64, 0.3)
    assert _layers(net.d_o) == _block(64, 256, 0.2) + _block(256, 512, 0.2)
    assert _layers(net.d_w) == _block(64, 512, 0.3)


#: a distinct value for every AVCA architecture field
AVCA_NET = dict(
    dim=20, encoder_hidden=36, decoder_hidden=28, dim_out=12, depth=2, heads=5, dim_head=7,
    mlp_dim=44, embedding_dropout=0.11, decoder_dropout=0.12, additional_dropout=0.13,
    bn_momentum=0.37, text_input_layer=False,
)  # fmt: skip


def _bn_momenta(block: torch.nn.Module) -> list[float]:
    return [m.momentum for m in block.modules() if isinstance(m, torch.nn.BatchNorm1d)]


def test_avca_hyperparameters_reach_their_layers() -> None:
    assert issubclass(AVCAConfig, AVCANetConfig) and _names(AVCANetConfig) == set(AVCA_NET)
    torch.manual_seed(0)
    net = AVCA(AVCAConfig(**AVCA_NET), InputSpec(D_A, D_V, D_W)).net
    for m, d_in in (("audio", D_A), ("video", D_V)):
        assert _layers(net.enc[m]) == _block(d_in, 36, 0.11) + _block(36, 20, 0.11)
        assert _layers(net.proj[m]) == _block(20, 28, 0.12) + _block(28, 12, 0.12)
        assert _layers(net.rec[m]) == _block(12, 20, 0.13)
        # the published momentum applies to the output BatchNorm of two-layer blocks only
        assert _bn_momenta(net.enc[m]) == _bn_momenta(net.proj[m]) == [0.1, 0.37]
    assert _layers(net.w_proj) == _block(D_W, 12, 0.13)
    assert _layers(net.decoder) == _block(12, D_W, 0.13)
    assert net.pos.shape == (2, 20) and len(net.cross_attention.layers) == 2
    for layer in net.cross_attention.layers:
        assert (layer.attn.heads, layer.attn.dim_head) == (5, 7)
        assert _layers(layer.attn.to_qkv) == [("Linear", 20, 3 * 5 * 7)]
        assert _layers(layer.attn.to_out) == [("Linear", 5 * 7, 20), ("Dropout", 0.11)]
        linears = [x for x in _layers(layer.ff) if x[0] == "Linear"]
        assert linears == [("Linear", 20, 44), ("Linear", 44, 20)]


@pytest.mark.parametrize(
    "kw, inputs, branches, attention, trained_pos",
    [
        ({}, ("audio", "video"), ("audio", "video"), True, True),
        ({"branches": "audio"}, ("audio", "video"), ("audio",), True, True),
        ({"fusion": "none"}, ("audio", "video"), ("audio", "video"), False, None),
        ({"inputs": "video", "branches": "video", "fusion": "none"}, ("video",), ("video",), False, None),
        ({"legacy_fixed_position": True}, ("audio", "video"), ("audio", "video"), True, False),
    ],
)  # fmt: skip
def test_avca_topology_reaches_the_network(
    kw: dict, inputs: tuple, branches: tuple, attention: bool, trained_pos: bool | None
) -> None:
    net = AVCA(AVCAConfig(**AVCA_NET, **kw), InputSpec(D_A, D_V, D_W)).net
    assert net.inputs == inputs and tuple(net.enc) == inputs
    assert net.branches == branches and tuple(net.proj) == tuple(net.rec) == branches
    assert (net.cross_attention is not None) == attention
    if trained_pos is not None:
        assert net.pos.requires_grad == trained_pos
