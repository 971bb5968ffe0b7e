"""The Table 5.1 text input layer w = W_enc(concat(w_clip, w_clap)) of CJME, AVGZSLNet, AVCA
and Hyper-multiple: off by default, on it maps the label embeddings to 300-d before the text branch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowshot.config.paper import load_paper_config
from lowshot.data.av.batch import Batch
from lowshot.methods.av.avca import AVCA, AVCAConfig
from lowshot.methods.av.avgzslnet import AVGZSLNet, AVGZSLNetConfig
from lowshot.methods.av.cjme import CJME, CJMEConfig
from lowshot.methods.av.hyper_multiple import HyperMultiple, HyperMultipleConfig
from lowshot.methods.base import InputSpec
from lowshot.models.av.text_input import TEXT_LAYER_DIM
from lowshot.recipes.gzsl import parse_experiment

pytestmark = pytest.mark.usefixtures("one_thread")
CLIPCLAP_SPEC = InputSpec(audio_dim=12, video_dim=10, text_dim=24)  # 24-d stand-in for 512 + 1024
AVCA_SMALL = dict(
    dim=24, encoder_hidden=16, decoder_hidden=16, dim_out=8, heads=2, dim_head=12, mlp_dim=16
)
CASES = [
    (CJME, CJMEConfig, dict(embedding_hidden=16, dim_out=8)),
    (AVGZSLNet, AVGZSLNetConfig, dict(embedding_hidden=16, decoder_hidden=16, dim_out=8)),
    (AVCA, AVCAConfig, AVCA_SMALL),
    (HyperMultiple, HyperMultipleConfig, AVCA_SMALL),
]


@pytest.mark.parametrize(("cls", "config", "kw"), CASES, ids=[c[0].__name__ for c in CASES])
def test_layer_maps_labels_to_300d_and_everything_trains_through_it(cls, config, kw) -> None:
    torch.manual_seed(0)
    off = cls(config(**kw), CLIPCLAP_SPEC)
    assert off.net.text_in.layer is None and off.net.text_in.out_dim == CLIPCLAP_SPEC.text_dim
    method = cls(config(**kw, text_input_layer=True), CLIPCLAP_SPEC)
    layer = method.net.text_in.layer
    assert (
        layer[0].in_features == CLIPCLAP_SPEC.text_dim and layer[0].out_features == TEXT_LAYER_DIM
    )
    labels = torch.arange(6).repeat(4)
    batch = Batch(torch.randn(24, 12), torch.randn(24, 10), labels, labels)
    emb = torch.randn(6, CLIPCLAP_SPEC.text_dim)
    method.training_loss(batch, emb)["loss"].backward()
    assert layer[0].weight.grad is not None and layer[0].weight.grad.abs().sum() > 0
    method.eval()
    with torch.no_grad():
        assert method.class_scores(batch, emb).shape == (24, 6)


@pytest.mark.parametrize("family", ["cjme", "avgzslnet", "avca", "hyper_multiple"])
def test_clipclap_cells_switch_the_layer_on(family: str) -> None:
    for ds in ("ucf", "vggsound", "activitynet"):
        exp, model = parse_experiment(load_paper_config(f"{family}.{ds}_clipclap"))
        assert model.text_input_layer and exp.data.text == ("clip", "clap")
        assert exp.provenance.table == "5.1"
    if family != "hyper_multiple":
        _, model = parse_experiment(load_paper_config(f"{family}.ucf_cls"))
        assert not model.text_input_layer


def test_published_settings_spot_checks() -> None:
    exp, cjme = parse_experiment(load_paper_config("cjme.vggsound_main"))
    assert cjme.dropout == 0.0 and (exp.train.epochs, exp.train.lr, exp.train.n_batches) == (
        50,
        1e-3,
        500,
    )
    exp, net = parse_experiment(load_paper_config("avgzslnet.ucf_cls"))
    assert net.normalize_decoder_outputs and net.embedding_bn and net.decoder_bn
    assert exp.protocol.beta_grid == (
        0.0,
        1.5,
        16,
    )  # averaged distances: the published sum's grid halved
    exp, perceiver = parse_experiment(load_paper_config("perceiver.vggsound_cls"))
    assert (
        perceiver.n_latents == 64 and perceiver.depth == 8 and exp.train.lr == 6e-5
    )  # TCaF's VGGSound setting
    _, hyper = parse_experiment(load_paper_config("hyper_multiple.ucf_clipclap"))
    assert (hyper.n_curvatures, hyper.max_curvature, hyper.bn_momentum) == (2, 0.01, 0.99)
    assert np.isclose(load_paper_config("avca.ucf_clipclap")["provenance"]["expected"]["HM"], 36.69)
