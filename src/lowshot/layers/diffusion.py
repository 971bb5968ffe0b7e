"""Denoising diffusion (DDPM, Ho et al. 2020) on feature vectors, as used by AV-Diff (thesis §4.4.2).

Linear variance schedule ``beta_t`` from ``beta_start`` to ``beta_end`` over ``T`` steps
(published 1e-4 -> 0.02), ``alpha_t = 1 - beta_t``, ``alpha_bar_t = prod_{s <= t} alpha_s``.
Time indices are 0-based (``t = 0 .. T-1``), so ``t`` here is the thesis' ``t - 1``.

* forward noising in closed form: ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`` (Eq. 4.8);
* the epsilon-prediction loss ``|eps - eps_theta(x_t, c, t)|^2`` at a uniform random ``t`` (Eq. 4.8);
* ancestral sampling (Eq. 4.9) with ``sigma_t^2 = beta_t``; the whole batch runs **one**
  reverse chain of ``T`` network calls (never one chain per sample). The last step adds no
  noise (Ho et al., Algorithm 2); ``final_noise=True`` adds ``sqrt(beta_0) z`` there too, as the
  published ``DenoiseDiffusion.p_sample`` (AVDIFF-GFSL ``src/diffusion_models.py``) does.
  Gradients flow through the chain unless the caller disables them.

The noise predictor is any callable ``eps_model(x_t [B, D], cond [B, D_c], t [B] int64) -> [B, D]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

EpsModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class LinearDDPM(nn.Module):
    """The schedule and the three DDPM operations (no parameters; buffers are not saved).

    Args:
        steps: ``T``.
        beta_start / beta_end: first and last ``beta_t``.
    """

    def __init__(self, steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"diffusion needs at least one step, got {steps}")
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
        self.steps = steps
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        alphas = 1.0 - betas
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alphas", alphas.float(), persistent=False)
        self.register_buffer("alpha_bars", torch.cumprod(alphas, 0).float(), persistent=False)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t`` ``[B, D]`` from ``x0`` ``[B, D]``, steps ``t`` ``[B]`` and ``noise`` ``[B, D]`` (closed form)."""
        ab = self.alpha_bars[t].unsqueeze(-1)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def loss(
        self, eps_model: EpsModel, x0: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Mean squared error of the predicted noise at uniform random steps (Eq. 4.8).

        Args:
            eps_model: the noise predictor.
            x0: ``[B, D]`` clean features.
            cond: ``[B, D_c]`` conditioning (class-label embeddings).
            generator: optional RNG for ``t`` and the noise.

        Returns:
            Scalar loss.
        """
        t = torch.randint(0, self.steps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        return F.mse_loss(eps_model(self.q_sample(x0, t, noise), cond, t), noise)

    def sample(
        self, eps_model: EpsModel, cond: torch.Tensor, dim: int, generator: torch.Generator | None = None,
        final_noise: bool = False,
    ) -> torch.Tensor:  # fmt: skip
        """Generate one feature per conditioning row with a single batched reverse chain (Eq. 4.9).

        Args:
            eps_model: the noise predictor.
            cond: ``[B, D_c]`` conditioning.
            dim: ``D`` of the generated features.
            generator: optional RNG.
            final_noise: also add ``sigma_0 z`` at the last step (published).

        Returns:
            ``[B, D]`` samples ``x_0``.
        """
        b = cond.shape[0]
        x = torch.randn((b, dim), device=cond.device, dtype=cond.dtype, generator=generator)
        for t in range(self.steps - 1, -1, -1):
            tt = torch.full((b,), t, device=cond.device, dtype=torch.long)
            eps = eps_model(x, cond, tt)
            x = (x - self.betas[t] / (1.0 - self.alpha_bars[t]).sqrt() * eps) / self.alphas[t].sqrt()
            if t > 0 or final_noise:
                x = x + self.betas[t].sqrt() * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
        return x


class NoisePredictor(nn.Module):
    """epsilon_theta as published (AVDIFF-GFSL ``src/AVDiff.py:GeneratorNetDiffusion``): on
    ``[x_t ; t ; cond]`` (``t`` the raw integer step) a LeakyReLU, then ``layers`` blocks
    Linear(``hidden / i``) -> LeakyReLU [-> Dropout] (``i = 1 .. layers``), then Linear to ``D``;
    LeakyReLU slope 0.01 (torch's default).

    Args:
        dim: ``D`` of the features.
        cond_dim: ``D_c`` of the conditioning.
        hidden: first hidden width (``generator_hidden``).
        layers: hidden blocks (``number_layers_diffusion``, 1 in every published config).
        dropout: dropout after each hidden block (``diffusion_dropout_value``; none if 0).
    """

    def __init__(self, dim: int, cond_dim: int, hidden: int, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"the noise predictor needs at least one hidden layer, got {layers}")
        mods: list[nn.Module] = [nn.LeakyReLU()]
        width = dim + 1 + cond_dim
        for i in range(layers):
            out = int(hidden / (i + 1))
            mods += [nn.Linear(width, out), nn.LeakyReLU()] + ([nn.Dropout(dropout)] if dropout else [])
            width = out
        self.net = nn.Sequential(*mods, nn.Linear(width, dim))

    def forward(self, x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``[B, D]``, ``[B, D_c]``, ``[B]`` -> predicted noise ``[B, D]``."""
        return self.net(torch.cat([x_t, t.to(x_t.dtype).unsqueeze(-1), cond], dim=-1))
