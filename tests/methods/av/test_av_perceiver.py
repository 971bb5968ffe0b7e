"""Perceiver: registered, 64 latents, the output latent reads both modalities, learns."""

from __future__ import annotations

import pytest
import torch
from av_method_testing import loss_before_and_after, method_and_train_batch
from av_tiny import TCAF_TINY, tiny_spec

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.av.perceiver import Perceiver, PerceiverConfig

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = dict(TCAF_TINY, dim=16, encoder_hidden=16, decoder_hidden=16)


def _setup(bench, seed: int = 0, **kw):
    return method_and_train_batch(
        Perceiver, PerceiverConfig(**{**SMALL, **kw}), bench, temporal=True, seed=seed
    )


def test_registered_default_latents_and_bad_count_is_a_config_error() -> None:
    assert METHODS.get("perceiver") is Perceiver
    method = Perceiver(PerceiverConfig(**SMALL), tiny_spec(temporal=True))
    assert PerceiverConfig().n_latents == 64 and method.net.latents.shape == (64, SMALL["dim"])
    assert (
        len(method.net.cross) == len(method.net.latent_self) == SMALL["depth"]
    )  # no weight sharing
    assert method.net.cls_token is None and len(method.net.transformer.layers) == 0
    with pytest.raises(ConfigError, match="n_latents"):
        PerceiverConfig(n_latents=0)


def test_output_latent_reads_both_modalities_and_ignores_padding(tiny_temporal) -> None:
    method, batch = _setup(tiny_temporal)
    method.eval()
    with torch.no_grad():
        inputs = method._inputs(batch)
        base, maps = method.net(inputs, return_attention=True)
        assert base.shape == (len(batch), SMALL["dim"])
        assert (
            len(maps) == SMALL["depth"] and maps[0].shape[-1] == 64
        )  # latent self-attention [B, H, L, L]
        for m in ("audio", "video"):  # changing one modality's valid steps changes c_o
            x = inputs[m]
            changed = dict(inputs)
            changed[m] = type(x)(x.values + 1.0 * x.mask[..., None], x.mask, x.times)
            assert (method.net(changed)[0] - base).abs().max() > 1e-4, m
            padded = dict(inputs)  # changing padded steps does not
            padded[m] = type(x)(x.values + 5.0 * (~x.mask)[..., None], x.mask, x.times)
            torch.testing.assert_close(method.net(padded)[0], base)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_lowers_the_loss(tiny_temporal, seed: int) -> None:
    method, batch = _setup(tiny_temporal, seed, n_latents=8)
    emb = torch.as_tensor(tiny_temporal.class_embeddings[:10])
    first, last = loss_before_and_after(method, batch, emb, steps=40, lr=3e-3)
    assert last < 0.6 * first
