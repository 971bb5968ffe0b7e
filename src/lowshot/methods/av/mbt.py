"""MBT (attention bottlenecks) as an audio-visual GFSL baseline (thesis Table 4.2).

Reference: A. Nagrani, S. Yang, A. Arnab, A. Jansen, C. Schmid, C. Sun, "Attention Bottlenecks
for Multimodal Fusion", NeurIPS 2021; adapted to audio-visual GFSL in thesis §4.3.3 (one
transformer per modality; the two exchange information only through bottleneck tokens).

Re-implemented from Nagrani et al. (NeurIPS 2021) and the thesis paragraph;
no upstream parity reference (the AV-Diff repository has only a flag for it, reference §6.9).
Inputs and tokens are TCaF's (per-step encoders, Fourier time and modality embeddings). Layers
``0 .. fusion_layer-1`` are unimodal (``[cls_m, tokens_m]``); from ``fusion_layer`` on each
modality's layer attends over ``[cls_m, tokens_m, z]`` and the shared bottleneck ``z`` is the
mean of the two updated copies (MBT Eqs. 8-9). Each modality has its own layer weights. The
class score averages the logits of the two class tokens (``O_proj`` then one classifier), as MBT
averages its two heads.

Differences from the published code: no code was released (reference §6.9). Differences from the
paper: no ViT/AST patch tokens (pre-extracted VGGish / C3D steps are the tokens); trained from
scratch with CE through the GFSL protocol (no ImageNet initialisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.layers.attention import TransformerLayer
from lowshot.layers.masks import GLOBAL, attention_mask
from lowshot.methods.av.gfsl_head import PhaseClasses, TemporalGFSLClassifier, TemporalGFSLConfig
from lowshot.methods.base import InputSpec


@dataclass(frozen=True)
class MBTConfig(TemporalGFSLConfig):
    """MBT: TCaF's tokens and sizes (``depth`` layers per modality) plus the bottleneck.

    Attributes:
        bottlenecks: number of bottleneck tokens ``B_fsn`` (MBT: 4).
        fusion_layer: first layer with bottleneck exchange ``L_f``. A bottleneck written by layer
            ``l`` is read by layer ``l + 1``, so ``L_f >= depth - 1`` lets no information cross
            between the modalities (unimodal streams whose logits are averaged).
    """

    bottlenecks: int = 4
    fusion_layer: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.modalities != "both":
            raise ConfigError("mbt: fuses two modalities; model.modalities must be 'both'")
        if self.bottlenecks < 1 or not 0 <= self.fusion_layer <= self.depth:
            raise ConfigError(f"mbt: bottlenecks >= 1 and fusion_layer in 0..depth={self.depth} needed")


@METHODS.register("mbt")
class MBT(TemporalGFSLClassifier):
    """Two per-modality transformers joined by bottleneck tokens; probability scores."""

    Config = MBTConfig

    def __init__(self, config: MBTConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        c = config

        def stack() -> nn.ModuleList:
            return nn.ModuleList(
                TransformerLayer(c.dim, c.heads, c.dim_head, c.mlp_dim, c.transformer_dropout, c.feed_forward, True)
                for _ in range(c.depth)
            )

        self.layers = nn.ModuleDict({m: stack() for m in ("audio", "video")})
        self.cls = nn.ParameterDict({m: nn.Parameter(torch.randn(1, 1, c.dim)) for m in ("audio", "video")})
        self.bottleneck = nn.Parameter(0.02 * torch.randn(1, c.bottlenecks, c.dim))
        self.head = PhaseClasses(c.dim_out, self.num_classes)

    def streams(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Output class token of each modality's transformer ``{"audio", "video"}: [B, D]``."""
        c = self.config
        x, masks = {}, {}
        for m, (tok, valid) in self.encode(batch).items():
            b = tok.shape[0]
            x[m] = torch.cat([self.cls[m].expand(b, -1, -1), tok], dim=1)
            keys = torch.cat([valid.new_ones(b, 1), valid, valid.new_ones(b, c.bottlenecks)], dim=1)
            ids = torch.zeros(keys.shape[1], dtype=torch.long, device=keys.device)
            ids[0] = GLOBAL
            # one stream: full attention over its own valid tokens (and the bottleneck once fused)
            masks[m] = attention_mask(ids, keys, "full")
        z = self.bottleneck.expand(x["audio"].shape[0], -1, -1)
        for layer in range(c.depth):
            fused = layer >= c.fusion_layer
            updates = []
            for m in ("audio", "video"):
                n = x[m].shape[1]
                if fused:
                    out, _ = self.layers[m][layer](torch.cat([x[m], z], dim=1), masks[m])
                    x[m], z_m = out[:, :n], out[:, n:]
                    updates.append(z_m)
                else:
                    x[m], _ = self.layers[m][layer](x[m], masks[m][:, :n, :n])
            if fused:
                z = torch.stack(updates).mean(0)  # MBT Eq. 9: the bottleneck is the mean of the two updates
        return {m: x[m][:, 0] for m in ("audio", "video")}

    def logits(self, batch: Batch) -> torch.Tensor:
        """Phase logits ``[B, C_p]``: mean of the two class tokens' logits."""
        cls = self.streams(batch)
        return torch.stack([self.head(self.tokens.o_proj(cls[m])) for m in ("audio", "video")]).mean(0)
