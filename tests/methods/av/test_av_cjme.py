"""CJME: registered, attention weights mix the per-modality distances, attention supervision, learns."""

from __future__ import annotations

import pytest
import torch
from av_method_testing import loss_before_and_after, method_and_train_batch

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.av.cjme import CJME, CJMEConfig, attention_target, mixed_distances

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = CJMEConfig(embedding_hidden=32, dim_out=8)


def _setup(bench, seed: int = 0):
    return method_and_train_batch(CJME, SMALL, bench, temporal=False, seed=seed)


def test_registered_and_bad_values_are_config_errors() -> None:
    assert METHODS.get("cjme") is CJME
    with pytest.raises(ConfigError, match="margin"):
        CJMEConfig(margin=0.0)
    with pytest.raises(ConfigError, match="epsilon"):
        CJMEConfig(epsilon=-1.0)


def test_attention_weights_sum_to_one_and_weight_the_modality_distances(tiny_averaged) -> None:
    method, batch = _setup(tiny_averaged)
    method.eval()
    emb = torch.as_tensor(tiny_averaged.class_embeddings)
    with torch.no_grad():
        joint, alpha = method.net(batch.audio, batch.video)
        t = method.net.embed_labels(emb)
        d_a, d_v = torch.cdist(joint.audio, t), torch.cdist(joint.video, t)
        scores = method.class_scores(batch, emb)
    assert alpha.shape == (len(batch),) and bool(((alpha > 0) & (alpha < 1)).all())
    weights = torch.stack([1 - alpha, alpha], dim=1)  # (audio, video)
    torch.testing.assert_close(weights.sum(1), torch.ones(len(batch)))
    # the mix is the weighted sum of the two distances, by hand for one sample
    mixed = mixed_distances(d_a, d_v, alpha)
    torch.testing.assert_close(mixed[3], weights[3, 0] * d_a[3] + weights[3, 1] * d_v[3])
    # scores use the hard attention: each sample's distances are those of one modality
    pick_video = alpha >= 0.5
    torch.testing.assert_close(-scores, torch.where(pick_video[:, None], d_v, d_a))


def test_attention_target_prefers_the_more_confident_modality() -> None:
    t = torch.eye(3) * 10  # three classes
    confident, flat = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.0]])
    assert attention_target(flat, confident, t, 0.1).item() == 1.0  # video confident -> video
    assert attention_target(confident, flat, t, 0.1).item() == 0.0  # audio confident -> audio
    assert attention_target(flat, flat, t, 0.1).item() == 0.5  # tie -> both


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_lowers_the_loss(tiny_averaged, seed: int) -> None:
    method, batch = _setup(tiny_averaged, seed)
    emb = torch.as_tensor(tiny_averaged.class_embeddings[:10])
    first, last = loss_before_and_after(method, batch, emb, steps=40, lr=1e-2)
    out = method.training_loss(batch, emb)
    assert set(out["loss_terms"]) == {"ct", "av", "att"}
    assert out["loss"].item() < 0.5 * first


def test_legacy_attention_broadcast_weighs_batch_means(tiny_averaged) -> None:
    """Published: ``(1 - alpha) [B, 1] * l_ta [B]`` broadcasts to ``[B, B]``; its mean is the
    product of the means. The default weights each sample by its own alpha."""
    alpha, l_ta, l_tv = torch.rand(5), torch.rand(5), torch.rand(5)
    published = (
        (1 - alpha[:, None]) * l_ta + alpha[:, None] * l_tv
    ).mean()  # the broadcast, as written upstream
    torch.testing.assert_close(
        published, (1 - alpha).mean() * l_ta.mean() + alpha.mean() * l_tv.mean()
    )
    assert not torch.isclose(published, ((1 - alpha) * l_ta + alpha * l_tv).mean())
    emb = torch.as_tensor(tiny_averaged.class_embeddings[:10])
    losses = []
    for legacy in (False, True):
        method, batch = method_and_train_batch(
            CJME,
            CJMEConfig(embedding_hidden=32, dim_out=8, legacy_attention_broadcast=legacy),
            tiny_averaged,
            False,
        )
        method.eval()
        losses.append(method.training_loss(batch, emb)["loss_terms"]["ct"].item())
    assert losses[0] != pytest.approx(losses[1])
