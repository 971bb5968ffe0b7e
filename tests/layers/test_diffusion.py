"""DDPM schedule: closed-form forward noising, epsilon-prediction loss, one batched reverse chain; hybrid schedules."""

from __future__ import annotations

import pytest
import torch

from lowshot.layers.diffusion import LinearDDPM, NoisePredictor
from lowshot.layers.masks import AUDIO, GLOBAL, VIDEO, hybrid_schedule, layer_masks

pytestmark = pytest.mark.usefixtures("one_thread")


def test_linear_schedule_values() -> None:
    d = LinearDDPM(200)
    assert d.betas[0].item() == pytest.approx(1e-4) and d.betas[-1].item() == pytest.approx(0.02)
    assert torch.allclose(d.alpha_bars, torch.cumprod(1 - torch.linspace(1e-4, 0.02, 200, dtype=torch.float64), 0).float())


def test_closed_form_matches_the_step_by_step_forward_process() -> None:
    g = torch.Generator().manual_seed(0)
    d, t, n = LinearDDPM(50), 29, 40000
    x0 = torch.full((n, 2), 1.5)
    x = x0.clone()
    for s in range(t + 1):  # q(x_s | x_{s-1}) = N(sqrt(1 - beta_s) x_{s-1}, beta_s I), Eq. 4.6
        x = (1 - d.betas[s]).sqrt() * x + d.betas[s].sqrt() * torch.randn(x.shape, generator=g)
    closed = d.q_sample(x0, torch.full((n,), t), torch.randn(x.shape, generator=g))
    ab = d.alpha_bars[t]
    for sample in (x, closed):
        assert sample.mean().item() == pytest.approx(ab.sqrt().item() * 1.5, abs=0.02)
        assert sample.var().item() == pytest.approx((1 - ab).item(), abs=0.02)


def test_epsilon_loss_is_the_mse_of_the_predicted_noise() -> None:
    d = LinearDDPM(100)
    x0, cond = torch.randn(64, 8), torch.randn(64, 3)

    def oracle(x_t, c, t):  # recovers the noise exactly from x_t and x0 (closed form inverted)
        ab = d.alpha_bars[t].unsqueeze(-1)
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()

    assert d.loss(oracle, x0, cond, torch.Generator().manual_seed(1)).item() < 1e-8
    zero = d.loss(lambda x_t, c, t: torch.zeros_like(x_t), x0, cond, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    torch.randint(0, 100, (64,), generator=g)
    noise = torch.randn(64, 8, generator=g)  # the same draws the loss made
    assert zero.item() == pytest.approx(noise.pow(2).mean().item(), rel=1e-6)


def test_reverse_chain_is_one_batched_chain_of_T_calls() -> None:
    d = LinearDDPM(30)
    model = NoisePredictor(dim=6, cond_dim=4, hidden=16)
    calls = []

    def counted(x_t, c, t):
        calls.append((x_t.shape, int(t[0]), bool((t == t[0]).all())))
        return model(x_t, c, t)

    out = d.sample(counted, torch.randn(17, 4), 6)
    assert out.shape == (17, 6) and torch.isfinite(out).all()
    assert len(calls) == 30 and all(shape == (17, 6) and same for shape, _, same in calls)
    assert [t for _, t, _ in calls] == list(range(29, -1, -1))


def test_noise_predictor_has_the_published_layers() -> None:
    """AVDIFF-GFSL GeneratorNetDiffusion: LeakyReLU(0.01) on [x_t ; t ; w], then per block
    Linear(hidden / i) -> LeakyReLU [-> Dropout], then Linear to D (no latent_generator layer)."""

    def kinds(m: NoisePredictor) -> list[tuple[str, float | None]]:
        attr = ("out_features", "negative_slope", "p")
        return [(type(x).__name__, next((getattr(x, a) for a in attr if hasattr(x, a)), None)) for x in m.net]

    assert kinds(NoisePredictor(dim=6, cond_dim=4, hidden=16)) == [
        ("LeakyReLU", 0.01), ("Linear", 16), ("LeakyReLU", 0.01), ("Linear", 6)]  # fmt: skip
    assert NoisePredictor(6, 4, 16).net[1].in_features == 6 + 1 + 4
    assert kinds(NoisePredictor(6, 4, 16, layers=2, dropout=0.3)) == [
        ("LeakyReLU", 0.01), ("Linear", 16), ("LeakyReLU", 0.01), ("Dropout", 0.3),
        ("Linear", 8), ("LeakyReLU", 0.01), ("Dropout", 0.3), ("Linear", 6)]  # fmt: skip
    x, c = torch.randn(3, 6), torch.randn(3, 4)
    t = torch.tensor([0, 5, 9])  # t enters as the raw integer step
    m = NoisePredictor(6, 4, 16)
    assert torch.allclose(m(x, c, t), m.net(torch.cat([x, t.float().unsqueeze(-1), c], 1)))


def test_reverse_chain_passes_gradients_and_final_noise_is_optional() -> None:
    d = LinearDDPM(3)
    model = NoisePredictor(dim=5, cond_dim=2, hidden=8)
    out = d.sample(model, torch.randn(4, 2), 5)
    out.pow(2).sum().backward()  # the CE on generated features trains epsilon_theta (published)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())

    def zero(x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x_t)

    d1 = LinearDDPM(1)  # one step: x_0 = x_1 / sqrt(alpha_0) (+ sqrt(beta_0) z with final_noise)
    plain = d1.sample(zero, torch.zeros(2000, 1), 3, torch.Generator().manual_seed(0))
    noisy = d1.sample(zero, torch.zeros(2000, 1), 3, torch.Generator().manual_seed(0), final_noise=True)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(2000, 3, generator=g)
    assert torch.allclose(plain, x1 / d1.alphas[0].sqrt())
    z = (noisy - plain) / d1.betas[0].sqrt()
    assert torch.allclose(z, torch.randn(2000, 3, generator=g), atol=1e-4)


def test_hybrid_schedule_through_the_mask_function() -> None:
    assert hybrid_schedule(4, 2) == ("self", "self", "full", "full")
    assert hybrid_schedule(4, 2, "alternate") == ("self", "full", "self", "full")
    assert hybrid_schedule(3, 0, "cross") == ("cross",) * 3
    with pytest.raises(ValueError, match="Z=5"):
        hybrid_schedule(4, 5)
    ids = torch.tensor([GLOBAL, AUDIO, AUDIO, VIDEO])
    blocks = layer_masks(ids, None, hybrid_schedule(3, 1))
    masks = [m.dense() for m in blocks]
    assert not masks[0][0, 1, 3] and masks[0][0, 1, 2] and masks[0][0, 0, 3]  # self: audio sees audio + cls only
    assert masks[1][0, 1, 3] and blocks[2] is blocks[1]  # full afterwards, one shared mask
