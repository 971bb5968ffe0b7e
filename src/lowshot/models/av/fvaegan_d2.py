"""f-VAEGAN-D2 networks on L2-normalised concat[video, audio] features (thesis §2.4.3).

A conditional VAE encoder ``E(x, w) -> (mu, log var)`` and a generator / decoder
``G(z, w) -> x`` (sigmoid output as published, since L2-normalised non-negative features lie
in ``[0, 1]``, or a linear output for features with negative values),
a conditional WGAN critic ``D(x, w) -> R``, the WGAN-GP gradient penalty, and the softmax
classifier head fitted on real seen + generated unseen features.

Shapes: ``B`` samples, ``C`` classes, ``K`` classifier classes, ``D_x = D_v + D_a`` features,
``D_w`` label embedding, ``D_z`` latent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from lowshot._registry import MODELS


@dataclass(frozen=True)
class FVAEGANNetConfig:
    """Architecture (the method config extends it; published values from ``src/args_gen.py``).

    Attributes:
        latent_dim: ``D_z`` (published ``latent_size`` 300).
        encoder_hidden: hidden width of the encoder (published ``encoder_layer_sizes[-1]`` 300).
        generator_hidden: hidden width of the generator (published ``decoder_layer_sizes[0]`` 512).
        critic_hidden: hidden width of the critic (published ``ndh`` 512).
        generator_output: ``sigmoid`` (published; features in ``[0, 1]``, reconstruction by
            binary cross-entropy), ``linear`` (any sign, reconstruction by squared error) or
            ``auto``: linear, or with the method's ``legacy_loss_scale`` (unit-norm features)
            ``sigmoid`` unless the first training batch has a negative value.
    """

    latent_dim: int = 300
    encoder_hidden: int = 300
    generator_hidden: int = 512
    critic_hidden: int = 512
    generator_output: Literal["auto", "sigmoid", "linear"] = "auto"


class Encoder(nn.Module):
    """``E``: ``[B, D_x]``, ``[B, D_w]`` -> (``mu`` ``[B, D_z]``, ``log var`` ``[B, D_z]``)."""

    def __init__(self, x_dim: int, text_dim: int, cfg: FVAEGANNetConfig) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(x_dim + text_dim, cfg.encoder_hidden), nn.ReLU())
        self.mean = nn.Linear(cfg.encoder_hidden, cfg.latent_dim)
        self.log_var = nn.Linear(cfg.encoder_hidden, cfg.latent_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, D_x]``, ``[B, D_w]`` -> ``mu``, ``log var`` ``[B, D_z]``."""
        h = self.body(torch.cat([x, w], dim=1))
        return self.mean(h), self.log_var(h)


class Generator(nn.Module):
    """``G``: ``[B, D_z]``, ``[B, D_w]`` -> features ``[B, D_x]`` (in ``(0, 1)`` when ``sigmoid``).

    ``sigmoid`` (a plain attribute; the output layer has no parameters) starts as the config
    asks (``auto`` counts as sigmoid until the method decides).
    """

    def __init__(self, x_dim: int, text_dim: int, cfg: FVAEGANNetConfig) -> None:
        super().__init__()
        self.sigmoid = cfg.generator_output != "linear"
        self.body = nn.Sequential(
            nn.Linear(cfg.latent_dim + text_dim, cfg.generator_hidden),
            nn.ReLU(),
            nn.Linear(cfg.generator_hidden, x_dim),
        )

    def forward(self, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``[B, D_z]``, ``[B, D_w]`` -> ``[B, D_x]``."""
        out = self.body(torch.cat([z, w], dim=1))
        return torch.sigmoid(out) if self.sigmoid else out


class Critic(nn.Module):
    """Conditional WGAN critic ``D``: ``[B, D_x]``, ``[B, D_w]`` -> ``[B, 1]`` (weights N(0, 0.02), bias 0)."""

    def __init__(self, x_dim: int, text_dim: int, cfg: FVAEGANNetConfig) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(x_dim + text_dim, cfg.critic_hidden), nn.LeakyReLU(0.2), nn.Linear(cfg.critic_hidden, 1)
        )
        for layer in self.body:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, 0.0, 0.02)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``[B, D_x]``, ``[B, D_w]`` -> ``[B, 1]``."""
        return self.body(torch.cat([x, w], dim=1))


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, w: torch.Tensor, weight: float
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * mean((||grad_x D(x_hat, w)||_2 - 1)^2)`` on random interpolates.

    ``x_hat = alpha * real + (1 - alpha) * fake`` with one ``alpha ~ U(0, 1)`` per sample.

    Args:
        critic: ``D(x, w) -> [B, 1]``.
        real / fake: ``[B, D_x]`` (``fake`` detached from the generator).
        w: ``[B, D_w]`` conditions.
        weight: ``lambda`` (published ``lambda1`` 10).

    Returns:
        Scalar penalty (differentiable w.r.t. the critic's parameters).
    """
    alpha = torch.rand(real.shape[0], 1, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, w).sum(), x_hat, create_graph=True)
    return weight * ((grad.norm(dim=1) - 1) ** 2).mean()


@MODELS.register("softmax_head")
class SoftmaxHead(nn.Module):
    """A fitted linear softmax classifier over ``K`` of the benchmark's ``C`` classes.

    Its weights are buffers (fitted outside the optimiser) whose shape follows what is
    fitted or loaded, so a checkpoint restores it whatever ``K`` was.

    Args:
        in_dim: ``D_x``.
    """

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(0, in_dim))
        self.register_buffer("bias", torch.zeros(0))
        self.register_buffer("classes", torch.zeros(0, dtype=torch.int64))

    @property
    def fitted(self) -> bool:
        """Whether a classifier has been fitted (or loaded)."""
        return self.classes.numel() > 0

    def set(self, weight: torch.Tensor, bias: torch.Tensor, classes: torch.Tensor) -> None:
        """Install ``weight`` ``[K, D_x]``, ``bias`` ``[K]`` for the global class indices ``classes`` ``[K]``."""
        self.weight, self.bias, self.classes = weight.detach(), bias.detach(), classes.to(torch.int64)

    def forward(self, x: torch.Tensor, n_classes: int) -> torch.Tensor:
        """``[B, D_x]`` -> ``[B, C]`` probabilities over the ``K`` fitted classes, 0 elsewhere."""
        probs = torch.softmax(x @ self.weight.t() + self.bias, dim=1)  # [B, K]
        out = probs.new_zeros(x.shape[0], n_classes)
        out[:, self.classes] = probs
        return out

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        for name in ("weight", "bias", "classes"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=self.weight.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
