"""Hierarchical Perceiver (HiP) as an audio-visual GFSL baseline (thesis Table 4.2).

Reference: J. Carreira, S. Koppula, D. Zoran, A. Recasens, C. Ionescu, O. Henaff, E. Shelhamer,
R. Arandjelovic, M. Botvinick, O. Vinyals, K. Simonyan, A. Zisserman, A. Jaegle, "Hierarchical
Perceiver", arXiv:2202.10890, 2022; thesis §4.3.3 ("we implement HiP in a similar way" as the
Perceiver of TCaF's App. B.1.2: TCaF inputs, embeddings and time/modality embeddings).

Re-implemented from Carreira et al. (arXiv 2022) and the thesis paragraph;
no upstream parity reference (reference §6.9). The token sequence (audio and video steps, TCaF
tokens) is cut into ``groups[0]`` groups along time (step ``t`` of a modality with ``T`` valid
steps is in group ``floor(G t / T)``, so each group holds the same stretch of both modalities).
Every level ``l`` has ``latents`` learnt latent tokens per group: they attend to their own
group's tokens (one layer over ``[latents; tokens]`` whose mask is the ``self`` pattern of
:func:`~lowshot.layers.masks.attention_mask` with the group index as modality id, so no
information crosses groups), then ``self_layers`` layers of group-local self-attention among the
latents. The next level merges ``groups[l-1] / groups[l]`` neighbouring groups and reads the
previous latents as its tokens. The class score is the classifier on O_proj of the mean of the
last level's latents.

Differences from the published code: no code was released (reference §6.9). Differences from the
paper: no masked-autoencoding pre-training and no decoder levels (classification only); latent
cross-attention keys include the latents themselves (one transformer layer over ``[latents;
tokens]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.layers.attention import TransformerLayer
from lowshot.layers.masks import attention_mask
from lowshot.methods.av.gfsl_head import PhaseClasses, TemporalGFSLClassifier, TemporalGFSLConfig
from lowshot.methods.base import InputSpec


def time_groups(valid: torch.Tensor, groups: int) -> torch.Tensor:
    """Group of each step ``[B, T]``: ``floor(groups * t / T_valid)`` (padded steps: the last group).

    Args:
        valid: ``[B, T]`` bool, True = valid step (valid steps first).
        groups: ``G``.
    """
    t = torch.arange(valid.shape[1], device=valid.device)[None, :]
    n = valid.sum(1, keepdim=True).clamp(min=1)
    return torch.div(groups * t, n, rounding_mode="floor").clamp(max=groups - 1)


@dataclass(frozen=True)
class HiPConfig(TemporalGFSLConfig):
    """HiP: TCaF's tokens and layer sizes plus the hierarchy (``depth`` is not used).

    Attributes:
        groups: groups per level, each dividing the previous (e.g. ``(4, 2, 1)``).
        latents: latent tokens per group and level.
        self_layers: group-local self-attention layers among the latents of each level.
    """

    ignored = ("depth",)

    groups: tuple[int, ...] = (4, 2, 1)
    latents: int = 8
    self_layers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        g = self.groups
        if not g or min(g) < 1 or any(a % b for a, b in zip(g, g[1:])) or self.latents < 1 or self.self_layers < 0:
            raise ConfigError(f"hip: groups must be positive, each dividing the previous, and latents >= 1; got {g}")


@METHODS.register("hip")
class HiP(TemporalGFSLClassifier):
    """Hierarchical Perceiver over audio-visual tokens; probability scores."""

    Config = HiPConfig

    def __init__(self, config: HiPConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        c = config

        def layer() -> TransformerLayer:
            return TransformerLayer(c.dim, c.heads, c.dim_head, c.mlp_dim, c.transformer_dropout, c.feed_forward, True)

        self.latent = nn.ParameterList(nn.Parameter(0.02 * torch.randn(1, g * c.latents, c.dim)) for g in c.groups)
        self.cross = nn.ModuleList(layer() for _ in c.groups)
        self.process = nn.ModuleList(nn.ModuleList(layer() for _ in range(c.self_layers)) for _ in c.groups)
        self.head = PhaseClasses(c.dim_out, self.num_classes)

    def levels(self, batch: Batch) -> list[torch.Tensor]:
        """Latents of every level: ``[B, groups[l] * latents, D]`` (group-major order)."""
        c = self.config
        enc = self.encode(batch)
        x = torch.cat([tok for tok, _ in enc.values()], dim=1)
        valid = torch.cat([v for _, v in enc.values()], dim=1)
        gid = torch.cat([time_groups(v, c.groups[0]) for _, v in enc.values()], dim=1)  # [B, N]
        b, out, prev = x.shape[0], [], c.groups[0]
        for level, g in enumerate(c.groups):
            gid = torch.div(gid, prev // g, rounding_mode="floor")  # merge neighbouring groups
            lat_id = torch.arange(g, device=x.device).repeat_interleave(c.latents).expand(b, -1)
            ids = torch.cat([lat_id, gid], dim=1)
            keys = torch.cat([valid.new_ones(lat_id.shape), valid], dim=1)
            z, _ = self.cross[level](torch.cat([self.latent[level].expand(b, -1, -1), x], dim=1),
                                     attention_mask(ids, keys, "self"))  # fmt: skip
            z = z[:, : lat_id.shape[1]]
            own = attention_mask(lat_id, None, "self")
            for lay in self.process[level]:
                z, _ = lay(z, own)
            out.append(z)
            x, valid, gid, prev = z, valid.new_ones(lat_id.shape), lat_id, g
        return out

    def logits(self, batch: Batch) -> torch.Tensor:
        """Phase logits ``[B, C_p]`` of the mean last-level latent."""
        return self.head(self.tokens.o_proj(self.levels(batch)[-1].mean(1)))
