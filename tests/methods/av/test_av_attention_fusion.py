"""Attention Fusion: registered, the gate formula, TCaF's heads and losses, learns."""

from __future__ import annotations

import pytest
import torch
from av_method_testing import loss_before_and_after, method_and_train_batch
from av_tiny import tiny_spec

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.av.attention_fusion import AttentionFusion, AttentionFusionConfig
from lowshot.models.av.attention_fusion import masked_time_mean
from lowshot.models.av.tcaf import TemporalInput

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = AttentionFusionConfig(
    dim=16, encoder_hidden=16, decoder_hidden=16, dim_out=8, embedding_dropout=0.0
)


def _setup(bench, seed: int = 0):
    return method_and_train_batch(AttentionFusion, SMALL, bench, temporal=True, seed=seed)


def test_registered_without_transformer_and_single_stream_is_a_config_error() -> None:
    assert METHODS.get("attention_fusion") is AttentionFusion
    method = AttentionFusion(SMALL, tiny_spec(temporal=True))
    names = {n for n, _ in method.net.named_parameters()}
    assert not any(n.startswith(("transformer.", "token_proj.", "cls_token")) for n in names)
    assert {"o_proj.0.0.weight", "w_proj.0.weight", "f_attn.weight"} <= names
    with pytest.raises(ConfigError, match="both modalities"):
        AttentionFusionConfig(modalities="audio", attention="full")


def test_output_is_the_gated_mix_of_the_time_averaged_modalities(tiny_temporal) -> None:
    method, batch = _setup(tiny_temporal)
    method.eval()
    net = method.net
    with torch.no_grad():
        inputs = method._inputs(batch)
        o_c, maps = net(inputs)
        phi = {}
        for m in ("audio", "video"):  # by hand: encode every valid step, average per sample
            x = inputs[m]
            phi[m] = torch.stack(
                [net.enc[m](x.values[i][x.mask[i]]).mean(0) for i in range(len(batch))]
            )
        alpha = torch.sigmoid(net.f_attn(torch.cat([phi["audio"], phi["video"]], dim=1)))
    assert maps == [] and o_c.shape == (len(batch), SMALL.dim)
    torch.testing.assert_close(o_c, alpha * phi["audio"] + (1 - alpha) * phi["video"])


def test_masked_time_mean_ignores_padding() -> None:
    values = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [0.0], [0.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = masked_time_mean(torch.nn.Identity(), TemporalInput(values, mask, torch.zeros(2, 3)))
    torch.testing.assert_close(out, torch.tensor([[2.0], [2.0]]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_lowers_the_loss(tiny_temporal, seed: int) -> None:
    method, batch = _setup(tiny_temporal, seed)
    emb = torch.as_tensor(tiny_temporal.class_embeddings[:10])
    first, last = loss_before_and_after(method, batch, emb, steps=40, lr=1e-2)
    assert last < 0.5 * first
