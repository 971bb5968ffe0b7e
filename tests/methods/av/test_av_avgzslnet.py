"""AVGZSLNet: registered, averaged audio/video distances, shared decoder, learns."""

from __future__ import annotations

import pytest
import torch
from av_method_testing import loss_before_and_after, method_and_train_batch

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.av.avgzslnet import AVGZSLNet, AVGZSLNetConfig, averaged_distances

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = AVGZSLNetConfig(
    embedding_hidden=32, decoder_hidden=16, dim_out=8, embedding_dropout=0.1, decoder_dropout=0.1
)


def _setup(bench, seed: int = 0):
    return method_and_train_batch(AVGZSLNet, SMALL, bench, temporal=False, seed=seed)


def test_registered_and_bad_margin_is_a_config_error() -> None:
    assert METHODS.get("avgzslnet") is AVGZSLNet
    with pytest.raises(ConfigError, match="margin"):
        AVGZSLNetConfig(margin=-1.0)


def test_averaged_distance_by_hand() -> None:
    a, v, t = (
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[3.0, 4.0]]),
        torch.tensor([[0.0, 0.0], [3.0, 0.0]]),
    )
    # class 0: (0 + 5) / 2; class 1: (3 + 4) / 2
    torch.testing.assert_close(averaged_distances(a, v, t), torch.tensor([[2.5, 3.5]]))


def test_scores_are_minus_the_averaged_distances(tiny_averaged) -> None:
    method, batch = _setup(tiny_averaged)
    method.eval()
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    with torch.no_grad():
        joint, t = method.net(batch.audio, batch.video), method.net.embed_labels(emb)
        expected = -(torch.cdist(joint.audio, t) + torch.cdist(joint.video, t)) / 2
        torch.testing.assert_close(method.class_scores(batch, emb), expected)


def test_one_decoder_is_shared_and_its_outputs_are_unit_norm(tiny_averaged) -> None:
    method, batch = _setup(tiny_averaged)
    joint = method.net(batch.audio, batch.video)
    for z in (joint.audio, joint.video):
        assert torch.allclose(method.net.decode(z).norm(dim=1), torch.ones(len(z)), atol=1e-5)
    assert len([m for m in method.net.modules() if m is method.net.f_dec]) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_lowers_the_loss(tiny_averaged, seed: int) -> None:
    method, batch = _setup(tiny_averaged, seed)
    emb = torch.as_tensor(tiny_averaged.class_embeddings[:10])
    first, last = loss_before_and_after(method, batch, emb, steps=40, lr=1e-2)
    out = method.training_loss(batch, emb)
    assert set(out["loss_terms"]) == {"ct", "rec", "cmd_t"}
    assert out["loss"].item() < 0.6 * first
