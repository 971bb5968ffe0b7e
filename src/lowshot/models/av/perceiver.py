"""Perceiver adapted to (G)ZSL (thesis app. B.1.2): TCaF's tokens (encoders, modality and time
embeddings) read by a latent array through cross-attention, then latent self-attention.

Shapes: ``B`` samples, ``N`` = ``T_a + T_v`` input tokens (padded), ``L`` latents (64),
``D`` = ``dim`` (``d_dim``), ``D_w`` label embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from lowshot._registry import MODELS
from lowshot.layers.attention import FeedForward, TransformerLayer, attend
from lowshot.models.av.attention_fusion import tcaf_net_config
from lowshot.models.av.tcaf import TCaFNet, TCaFNetConfig, TemporalInput


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention of the latents over the input tokens, then a feed-forward block.

    ``z = z + Drop(W_o Att(LN(z) W_q, LN(x) W_k, LN(x) W_v))``; ``z = z + FF(LN(z))`` (the
    feed-forward ends in dropout, as TCaF's dense blocks).

    Args:
        dim / heads / dim_head / mlp_dim / dropout: TCaF's transformer sizes.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.norm_latent, self.norm_input, self.norm_ff = (
            nn.LayerNorm(dim),
            nn.LayerNorm(dim),
            nn.LayerNorm(dim),
        )
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))
        self.ff = FeedForward(dim, mlp_dim, dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.dim_head).transpose(1, 2)  # [B, H, n, d_head]

    def forward(self, z: torch.Tensor, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Latents ``z [B, L, D]`` read tokens ``x [B, N, D]`` (``valid [B, N]``) -> ``[B, L, D]``."""
        k, v = self.to_kv(self.norm_input(x)).chunk(2, dim=-1)
        out = attend(
            self._heads(self.to_q(self.norm_latent(z))), self._heads(k), self._heads(v), valid
        )
        b, _, n, _ = out.shape
        z = z + self.to_out(out.transpose(1, 2).reshape(b, n, -1))
        return z + self.ff(self.norm_ff(z))


@MODELS.register("perceiver")
class PerceiverNet(TCaFNet):
    """TCaF's token encoders and heads around a Perceiver core of ``depth`` layers.

    Each layer is one cross-attention block (latents read all audio and video tokens) and one
    self-attention layer over the latents, without weight sharing across layers; latent 0
    after the last layer is the output token ``c_o``.

    Args:
        audio_dim / video_dim / text_dim: ``D_a`` / ``D_v`` / ``D_w``.
        cfg: TCaF's architecture config (``depth``, ``heads``, ``dim_head``, ``mlp_dim``,
            ``transformer_dropout`` size the core; ``attention``/``readout`` are unused).
        n_latents: ``L`` (64).
    """

    def __init__(
        self, audio_dim: int, video_dim: int, text_dim: int, cfg: TCaFNetConfig, n_latents: int = 64
    ) -> None:
        super().__init__(
            audio_dim, video_dim, text_dim, tcaf_net_config(cfg, depth=0, readout="mean")
        )
        self.latents = nn.Parameter(torch.randn(n_latents, cfg.dim))
        sizes = (cfg.dim, cfg.heads, cfg.dim_head, cfg.mlp_dim, cfg.transformer_dropout)
        self.cross = nn.ModuleList(CrossAttentionBlock(*sizes) for _ in range(cfg.depth))
        self.latent_self = nn.ModuleList(TransformerLayer(*sizes) for _ in range(cfg.depth))

    def forward(
        self, inputs: dict[str, TemporalInput], return_attention: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output token ``c_o`` ``[B, D]`` (and the latent self-attention maps ``[B, H, L, L]`` on request)."""
        tokens = torch.cat(
            [self._encode(m, inputs[m]) for m in self.modalities], dim=1
        )  # [B, N, D]
        valid = torch.cat([inputs[m].mask for m in self.modalities], dim=1)
        z = self.latents.expand(tokens.shape[0], -1, -1)
        maps = []
        for cross, layer in zip(self.cross, self.latent_self):
            z = cross(z, tokens, valid)
            z, attn = layer(z, None, return_attention)
            if attn is not None:
                maps.append(attn)
        return z[:, 0], maps
