"""Conditional Wasserstein GAN losses with gradient penalty (Arjovsky et al. 2017; Gulrajani et al. 2017).

Both losses come from one forward pass so that a single optimiser step updates critic and
generator: the critic sees detached inputs, and the generator's term is computed with the
critic's parameters excluded from the graph (gradients reach the generator only).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """``E[(||grad_x D(x, c)||_2 - 1)^2]`` at random interpolates of ``real`` and ``fake`` ``[B, D]``."""
    alpha = torch.rand(real.shape[0], 1, device=real.device, dtype=real.dtype)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x, cond).sum(), x, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def wgan_gp_losses(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor, gp_weight: float = 10.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(critic loss, generator loss) of one batch.

    Args:
        critic: ``D(x [B, D], cond [B, D_c]) -> [B, 1]``.
        real: ``[B, D]`` real features (detached here).
        fake: ``[B, D]`` generated features (with the generator's graph).
        cond: ``[B, D_c]`` conditioning.
        gp_weight: lambda of the gradient penalty.

    Returns:
        ``D(fake) - D(real) + lambda GP`` (critic parameters only) and ``-D(fake)`` (generator only).
    """
    real, cond = real.detach(), cond.detach()
    d_loss = critic(fake.detach(), cond).mean() - critic(real, cond).mean()
    d_loss = d_loss + gp_weight * gradient_penalty(critic, real, fake.detach(), cond)
    params = [p for p in critic.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        g_loss = -critic(fake, cond).mean()
    finally:
        for p in params:
            p.requires_grad_(True)
    return d_loss, g_loss
