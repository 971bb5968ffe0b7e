"""Hyper-multiple: the Poincaré exponential map, adaptive curvatures, AVCA's loss plus alignment."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from av_tiny import AVCA_TINY, tiny_spec

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.av.avca import AVCA
from lowshot.methods.av.hyper_multiple import HyperMultiple, HyperMultipleConfig
from lowshot.models.av.hyper_multiple import alignment_loss, expmap0

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = AVCA_TINY


def test_expmap_stays_inside_the_ball_and_matches_the_closed_form() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 5) * torch.tensor([0.01, 1.0, 10.0, 100.0, 1e3, 1e4])[:, None]
    c = torch.full((6, 1), 0.01)
    y = expmap0(x, c)
    assert bool((y.norm(dim=1) < 1 / math.sqrt(0.01)).all())  # radius 10
    # closed form, one row by hand: ||y|| = tanh(sqrt(c) ||x||) / sqrt(c), same direction as x
    r = x[1].norm().item()
    assert y[1].norm().item() == pytest.approx(math.tanh(0.1 * r) / 0.1, rel=1e-5)
    torch.testing.assert_close(y[1] / y[1].norm(), x[1] / x[1].norm())
    small = torch.tensor([[1e-4, 0.0]])  # near the origin exp_0 is the identity
    torch.testing.assert_close(expmap0(small, torch.tensor([[1.0]])), small)


def test_alignment_loss_is_zero_for_identical_structure_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    phi = torch.randn(8, 6)
    c = torch.rand(8, 2) * 0.01 + 1e-4
    assert alignment_loss(phi, 3 * phi, c).item() == pytest.approx(0.0, abs=1e-10)
    assert alignment_loss(phi, torch.randn(8, 6), c).item() > 1e-3


def test_registered_and_config_errors() -> None:
    assert METHODS.get("hyper_multiple") is HyperMultiple and issubclass(HyperMultiple, AVCA)
    with pytest.raises(ConfigError, match="n_curvatures"):
        HyperMultipleConfig(n_curvatures=0)
    with pytest.raises(ConfigError, match="cross-attention"):
        HyperMultipleConfig(inputs="audio", branches="audio", fusion="none")


def test_loss_is_avcas_plus_the_weighted_alignment(tiny_averaged) -> None:
    fs = tiny_averaged.splits["stage_1_train"]
    idx = np.arange(len(fs))
    emb = torch.as_tensor(tiny_averaged.class_embeddings[:10])
    torch.manual_seed(0)
    method = HyperMultiple(
        HyperMultipleConfig(**SMALL, align_weight=0.5), tiny_spec(temporal=False)
    )
    batch = method.collate(fs, idx, fs.labels[idx], train=True)
    method.eval()  # deterministic: no dropout, BatchNorm running statistics; eval records nothing
    torch.manual_seed(1)
    out = method.training_loss(batch, emb)
    assert out["loss_terms"]["align"].item() == 0.0  # no training forward, no term
    method.train()
    torch.manual_seed(1)
    out = method.training_loss(batch, emb)
    align = out["loss_terms"]["align"]
    avca_terms = sum(v for k, v in out["loss_terms"].items() if k != "align")
    torch.testing.assert_close(out["loss"], avca_terms + 0.5 * align)
    assert align.item() > 0 and not method.net.align_terms  # cleared after use
    curv = method.net.curvatures(torch.randn(4, 24), torch.randn(4, 24))
    assert curv.shape == (4, 2) and bool(((curv > 0) & (curv < 0.01)).all())
