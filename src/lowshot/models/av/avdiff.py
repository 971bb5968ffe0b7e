"""AV-Diff architecture (thesis ch. 4, Fig. 4.2): hybrid-attention fusion, Proj_net, CL_net, text-conditioned DDPM.

The fusion is the TCaF token pipeline (:class:`~lowshot.models.av.tcaf.TCaFNet`: per-step
encoders, Fourier time + modality embeddings, class token, L pre-norm layers, O_proj =
Proj_net) with AV-Diff's per-layer attention schedule (:func:`~lowshot.layers.masks.hybrid_schedule`).

Shapes: ``B`` samples, ``C`` classes, ``D_w`` conditioning (label embedding or a/v prototype),
``d_out`` (64) fused feature ``c_o``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lowshot._registry import MODELS
from lowshot.layers.diffusion import LinearDDPM, NoisePredictor
from lowshot.layers.masks import hybrid_schedule
from lowshot.models.av.tcaf import TCaFNet, TCaFNetConfig, TemporalInput

Fusion = Literal["hybrid", "alternate", "full", "self", "cross"]


@dataclass(frozen=True)
class AVDiffNetConfig(TCaFNetConfig):
    """Architecture of AV-Diff (defaults: the published UCF 5-shot run, reference §4.4).

    Attributes:
        fusion: ``hybrid`` (Z self-attention layers, then full attention), ``alternate``,
            or one pattern for all layers (``full``, ``self``, ``cross``) — Table 4.3.
        attention_switch: ``Z`` (``layer_change_attention``).
        diffusion_steps: ``T``. beta_start / beta_end: the linear schedule.
        generator_hidden: first hidden width of epsilon_theta (``generator_hidden_size``).
        diffusion_layers: hidden blocks of epsilon_theta (``number_layers_diffusion``; the
            published ``latent_generator`` is read but used by no module).
        diffusion_dropout: dropout of epsilon_theta (``diffusion_dropout_value``).
        generator: ``diffusion`` (the DDPM) or ``wgan`` (Table 4.4's AV-GAN: a conditional
            WGAN-GP generator and critic with ``generator_hidden`` units, noise of ``dim_out``).
    """

    depth: int = 4
    attention_switch: int = 2
    fusion: Fusion = "hybrid"
    transformer_dropout: float = 0.1
    token_dropout: float = 0.1
    embedding_dropout: float = 0.2
    decoder_dropout: float = 0.1
    diffusion_steps: int = 200
    beta_start: float = 1e-4
    beta_end: float = 0.02
    generator_hidden: int = 128
    diffusion_layers: int = 1
    diffusion_dropout: float = 0.0
    generator: Literal["diffusion", "wgan"] = "diffusion"


class ConditionedMLP(nn.Module):
    """``f([x ; c])``: Linear -> LeakyReLU(0.2) -> Linear on the concatenation of ``x`` and a condition.

    Args:
        d_x / d_c: sizes of ``x`` and ``c``. hidden: hidden width. d_out: output size.
    """

    def __init__(self, d_x: int, d_c: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_x + d_c, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, d_out))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``[N, d_x]``, ``[N, d_c]`` -> ``[N, d_out]``."""
        return self.net(torch.cat([x, c], dim=1))


@MODELS.register("avdiff")
class AVDiffNet(nn.Module):
    """Fusion (TCaF tokens + hybrid schedule), classifier CL_net on ``c_o``, DDPM with epsilon_theta.

    Args:
        audio_dim / video_dim: ``D_a`` / ``D_v``.
        cond_dim: ``D_w`` of the diffusion conditioning.
        num_classes: ``C`` (rows of CL_net; every class of the dataset).
        cfg: :class:`AVDiffNetConfig` (or the method config that extends it).
        bn_over_padding: legacy encoder BatchNorm statistics over padded steps.
    """

    def __init__(
        self, audio_dim: int, video_dim: int, cond_dim: int, num_classes: int, cfg: AVDiffNetConfig,
        bn_over_padding: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.fusion = TCaFNet(audio_dim, video_dim, cond_dim, cfg, bn_over_padding)
        self.fusion.patterns = hybrid_schedule(cfg.depth, cfg.attention_switch, cfg.fusion)
        for unused in ("d_o", "w_proj", "d_w"):  # TCaF's label-space heads; AV-Diff classifies instead
            delattr(self.fusion, unused)
        self.classifier = nn.Linear(cfg.dim_out, num_classes)  # CL_net
        if cfg.generator == "diffusion":
            self.ddpm = LinearDDPM(cfg.diffusion_steps, cfg.beta_start, cfg.beta_end)
            self.eps_model = NoisePredictor(
                cfg.dim_out, cond_dim, cfg.generator_hidden, cfg.diffusion_layers, cfg.diffusion_dropout
            )
        else:  # Table 4.4: G(z ; w) and D(x ; w), as in TSL's feature GAN [re-implemented]
            self.gan_g = ConditionedMLP(cfg.dim_out, cond_dim, cfg.generator_hidden, cfg.dim_out)
            self.gan_d = ConditionedMLP(cfg.dim_out, cond_dim, cfg.generator_hidden, 1)

    def gan_generate(self, cond: torch.Tensor) -> torch.Tensor:
        """WGAN generator: ``[N, D_w]`` conditioning -> ``[N, d_out]`` features (fresh noise)."""
        z = torch.randn(cond.shape[0], self.classifier.in_features, device=cond.device, dtype=cond.dtype)
        return self.gan_g(z, cond)

    def fusion_modules(self) -> list[nn.Module]:
        """The parts frozen in the full phase: encoders, token projections, embeddings, class token, transformer."""
        f = self.fusion
        mods: list[nn.Module] = [f.enc, f.token_proj, f.transformer]
        mods += [m for m in (f.modality_emb, f.time_emb) if m is not None]
        return mods

    def fusion_parameters(self) -> list[nn.Parameter]:
        """Parameters of :meth:`fusion_modules` plus the class token."""
        params = [p for m in self.fusion_modules() for p in m.parameters()]
        return params + ([self.fusion.cls_token] if self.fusion.cls_token is not None else [])

    def forward(self, inputs: dict[str, TemporalInput]) -> torch.Tensor:
        """Fused feature ``c_o = Proj_net(cls)`` ``[B, d_out]``."""
        cls, _ = self.fusion(inputs)
        return self.fusion.o_proj(cls)
