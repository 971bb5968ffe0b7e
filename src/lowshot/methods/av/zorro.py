"""Zorro (masked multimodal transformer) as an audio-visual GFSL baseline (thesis Table 4.2).

Reference: A. Recasens, J. Lin, J. Carreira, D. Jaegle, L. Wang, J.-B. Alayrac, P. Luc,
A. Miech, L. Smaira, R. Hemsley, A. Zisserman, "Zorro: the masked multimodal transformer",
arXiv:2301.09595, 2023; adapted in thesis §4.3.3 ("a classifier on top of the averaged
bottleneck attention tokens").

Re-implemented from Recasens et al. (arXiv 2023) and the thesis paragraph;
no upstream parity reference (reference §6.9). One transformer over ``[audio tokens, video
tokens, fusion tokens]`` whose mask keeps the two unimodal streams unimodal (audio attends to
audio only, video to video only: the ``self`` pattern of
:func:`~lowshot.layers.masks.attention_mask`) while the fusion tokens attend to every valid
token (the ``full`` pattern's rows). The classifier reads the mean of the output fusion tokens
through O_proj. Inputs and tokens are TCaF's.

Differences from the published code: no code was released (reference §6.9). Differences from the
paper: no self-supervised pre-training and no unimodal heads (the thesis adaptation classifies
the averaged fusion tokens only); the tokens are pre-extracted VGGish / C3D steps, not patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.layers.attention import TransformerStack
from lowshot.layers.masks import AUDIO, VIDEO, attention_mask
from lowshot.methods.av.gfsl_head import PhaseClasses, TemporalGFSLClassifier, TemporalGFSLConfig
from lowshot.methods.base import InputSpec

#: modality id of Zorro's fusion tokens (neither audio nor video, not GLOBAL: unimodal tokens must not see them)
FUSION = 2


def zorro_mask(modality_ids: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
    """Zorro's mask ``[B, N, N]``: unimodal queries see their own modality, fusion queries every valid key.

    Args:
        modality_ids: ``[N]`` ids (``AUDIO``, ``VIDEO``, :data:`FUSION`).
        key_valid: ``[B, N]`` bool, True = valid token.
    """
    own = attention_mask(modality_ids, key_valid, "self")
    everything = attention_mask(modality_ids, key_valid, "full")
    fusion_query = (modality_ids == FUSION)[None, :, None]
    return torch.where(fusion_query, everything, own)


@dataclass(frozen=True)
class ZorroConfig(TemporalGFSLConfig):
    """Zorro: TCaF's tokens and transformer sizes plus the fusion tokens.

    Attributes:
        fusion_tokens: number of fusion ("bottleneck") tokens (Zorro: 8).
    """

    fusion_tokens: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.modalities != "both" or self.fusion_tokens < 1:
            raise ConfigError("zorro: needs modalities='both' and fusion_tokens >= 1")


@METHODS.register("zorro")
class Zorro(TemporalGFSLClassifier):
    """Masked multimodal transformer; classifier on the averaged fusion tokens; probability scores."""

    Config = ZorroConfig

    def __init__(self, config: ZorroConfig, spec: InputSpec) -> None:
        super().__init__(config, spec)
        c = config
        self.fusion = nn.Parameter(0.02 * torch.randn(1, c.fusion_tokens, c.dim))
        self.transformer = TransformerStack(
            c.depth, c.dim, c.heads, c.dim_head, c.mlp_dim, c.transformer_dropout, c.feed_forward, shared_norm=True
        )
        self.head = PhaseClasses(c.dim_out, self.num_classes)

    def forward_tokens(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """All output tokens ``[B, N, D]`` (audio, video, fusion) and their modality ids ``[N]``."""
        enc = self.encode(batch)
        (a, a_valid), (v, v_valid) = enc["audio"], enc["video"]
        b = a.shape[0]
        f = self.fusion.expand(b, -1, -1)
        ids = torch.cat([torch.full((a.shape[1],), AUDIO), torch.full((v.shape[1],), VIDEO),
                         torch.full((f.shape[1],), FUSION)]).to(a.device)  # fmt: skip
        valid = torch.cat([a_valid, v_valid, a_valid.new_ones(b, f.shape[1])], dim=1)
        out, _ = self.transformer(torch.cat([a, v, f], dim=1), zorro_mask(ids, valid))
        return out, ids

    def logits(self, batch: Batch) -> torch.Tensor:
        """Phase logits ``[B, C_p]`` of the averaged output fusion tokens."""
        out, ids = self.forward_tokens(batch)
        return self.head(self.tokens.o_proj(out[:, ids == FUSION].mean(1)))
