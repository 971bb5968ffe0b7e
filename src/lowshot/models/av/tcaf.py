"""TCaF architecture (thesis ch. 3, Fig. 3.2): temporal tokens, cross-modal transformer, heads.

Shapes: ``B`` samples, ``T_a`` / ``T_v`` audio / video steps (padded), ``N = 1 + T_a + T_v``
tokens, ``D_a`` / ``D_v`` input features, ``D_w`` label embedding, ``D`` = ``dim`` (300),
``d_pos`` (64), ``d_out`` (64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lowshot._registry import MODELS
from lowshot.layers.attention import TransformerStack
from lowshot.layers.embeddings import FourierTimeEmbedding
from lowshot.layers.masks import AUDIO, GLOBAL, VIDEO, Pattern, layer_masks
from lowshot.layers.mlp import embedding_net


@dataclass
class TemporalInput:
    """One modality's padded sequence.

    Attributes:
        values: ``[B, T, D_m]`` features (zeros at padding).
        mask: ``[B, T]`` bool, True = valid step.
        times: ``[B, T]`` float time of each step in seconds (what the time embedding sees).
    """

    values: torch.Tensor
    mask: torch.Tensor
    times: torch.Tensor


@dataclass(frozen=True)
class TCaFNetConfig:
    """Architecture of TCaF (the method config extends it: each value is declared once).

    Attributes:
        dim: ``d_dim`` (300). encoder_hidden: ``d_f_hidd`` (512). decoder_hidden: hidden size
            of O_proj / D_o (512). dim_out: ``d_out`` (64). pos_dim: ``d_pos`` (64).
        depth / heads / dim_head / mlp_dim: transformer (L, H, d_head, d_ff).
        fourier_scale: std scale of the Fourier frequencies.
        embedding_dropout / token_dropout / transformer_dropout / decoder_dropout /
            additional_dropout: ``drop_enc`` / ``drop_prob,pos`` / ``drop_prob`` /
            ``drop_proj_o`` / ``drop_proj_w``.
        attention: pattern of every layer, ``cross`` (A_x, TCaF), ``self`` (A_self) or
            ``full`` (A_self + A_x), Table 3.3 (see :mod:`lowshot.layers.masks`).
        readout: ``class_token`` (prepend x^c and read it out) or ``mean`` of the valid output
            tokens (Table 3.3 "w/o class token").
        modalities: token streams used (Table 3.4 single-modality models).
        time_embedding: ``fourier`` or ``none`` (Table B.1 ``-pos_t``).
        modality_embedding: add the learnt ``pos_a`` / ``pos_v``.
        feed_forward: False removes the feed-forward blocks (Table B.2 "w/o FF").
        attention_block: ``tcaf`` (temporal tokens, ``attention`` pattern) or ``avca``
            (Table B.3 "TC_AF + att from [157]"): the cross-attention block of AVCA (thesis
            §2.3.1) in place of TCaF's: each modality enters as one token, the mean of its
            valid tokens (AVCA attends over temporally averaged features), a residual
            connection spans the whole block (Eq. 2.2) and each layer has its own two
            LayerNorms (as AVCA); with ``attention="full"`` (required by the method config)
            every token attends to every token, as in AVCA.
    """

    dim: int = 300
    encoder_hidden: int = 512
    decoder_hidden: int = 512
    dim_out: int = 64
    pos_dim: int = 64
    depth: int = 6
    heads: int = 8
    dim_head: int = 64
    mlp_dim: int = 128
    fourier_scale: float = 10.0
    embedding_dropout: float = 0.3
    token_dropout: float = 0.2
    transformer_dropout: float = 0.3
    decoder_dropout: float = 0.1
    additional_dropout: float = 0.1
    attention: Literal["cross", "self", "full"] = "cross"
    readout: Literal["class_token", "mean"] = "class_token"
    modalities: Literal["both", "audio", "video"] = "both"
    time_embedding: Literal["fourier", "none"] = "fourier"
    modality_embedding: bool = True
    feed_forward: bool = True
    attention_block: Literal["tcaf", "avca"] = "tcaf"


@MODELS.register("tcaf")
class TCaFNet(nn.Module):
    """A_enc, V_enc, position encoder, class token, L transformer layers, O_proj, D_o, W_proj, D_w.

    Args:
        audio_dim / video_dim / text_dim: ``D_a`` / ``D_v`` / ``D_w``.
        cfg: the architecture (:class:`TCaFNetConfig`, or the method config that extends it).
        bn_over_padding: legacy: encoder BatchNorm statistics include padded steps.
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        text_dim: int,
        cfg: TCaFNetConfig,
        bn_over_padding: bool = False,
    ) -> None:
        super().__init__()
        dim, pos_dim = cfg.dim, cfg.pos_dim
        self.avca_block = cfg.attention_block == "avca"
        self.patterns: tuple[Pattern, ...] = (cfg.attention,) * cfg.depth
        self.modalities = ("audio", "video") if cfg.modalities == "both" else (cfg.modalities,)
        self.bn_over_padding = bn_over_padding
        #: run the per-token parts of the transformer on valid tokens only (same outputs,
        #: less compute with padded batches); False for A/B timing
        self.pack_tokens = True
        self.pos_dim = pos_dim
        in_dims = {"audio": audio_dim, "video": video_dim}
        self.enc = nn.ModuleDict(
            {
                m: embedding_net(in_dims[m], dim, cfg.embedding_dropout, cfg.encoder_hidden)
                for m in self.modalities
            }
        )  # Eq. 3.1
        # g_a, g_v of Eq. 3.2 (the published 1x1 Conv1d is a per-token Linear)
        self.token_proj = nn.ModuleDict({m: nn.Linear(dim + pos_dim, dim) for m in self.modalities})
        self.token_dropout = nn.Dropout(cfg.token_dropout)
        self.modality_emb = nn.Embedding(2, pos_dim) if cfg.modality_embedding else None
        self.time_emb = (
            FourierTimeEmbedding(pos_dim, cfg.fourier_scale)
            if cfg.time_embedding == "fourier"
            else None
        )
        self.cls_token = (
            nn.Parameter(torch.randn(1, 1, dim)) if cfg.readout == "class_token" else None
        )
        self.transformer = TransformerStack(
            cfg.depth,
            dim,
            cfg.heads,
            cfg.dim_head,
            cfg.mlp_dim,
            cfg.transformer_dropout,
            cfg.feed_forward,
            shared_norm=not self.avca_block,
        )
        self.o_proj = embedding_net(dim, cfg.dim_out, cfg.decoder_dropout, cfg.decoder_hidden)
        self.d_o = embedding_net(cfg.dim_out, text_dim, cfg.decoder_dropout, cfg.decoder_hidden)
        self.w_proj = embedding_net(text_dim, cfg.dim_out, cfg.additional_dropout)
        self.d_w = embedding_net(cfg.dim_out, text_dim, cfg.additional_dropout)

    def _encode(self, modality: str, x: TemporalInput) -> torch.Tensor:
        """Per-step encoder + position encoder block (Eqs. 3.1-3.2): ``[B, T, D]`` tokens."""
        enc = self.enc[modality]
        b, t, _ = x.values.shape
        if self.bn_over_padding:
            phi = enc(x.values.reshape(b * t, -1)).view(b, t, -1)
        else:  # BatchNorm statistics over valid steps only; padded tokens stay zero
            valid = enc(x.values[x.mask])
            phi = valid.new_zeros(b, t, valid.shape[-1])
            phi[x.mask] = valid
        code = phi.new_zeros(b, t, self.pos_dim)
        if self.modality_emb is not None:
            code = code + self.modality_emb.weight[AUDIO if modality == "audio" else VIDEO]  # pos_a
        if self.time_emb is not None:
            code = code + self.time_emb(x.times)  # pos_t of the real time in seconds
        return self.token_dropout(self.token_proj[modality](torch.cat([phi, code], dim=-1)))

    def forward(
        self, inputs: dict[str, TemporalInput], return_attention: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output token ``c_o`` ``[B, D]`` (and per-layer ``[B, H, N, N]`` maps on request).

        Args:
            inputs: ``{"audio": TemporalInput, "video": TemporalInput}`` (the used modalities).
            return_attention: use the explicit attention path and return the maps.
        """
        tokens, segments, valid = [], [], []
        any_input = inputs[self.modalities[0]]
        b, device = any_input.values.shape[0], any_input.values.device
        if self.cls_token is not None:
            tokens.append(self.cls_token.expand(b, -1, -1))
            segments.append((GLOBAL, 1))
            valid.append(torch.ones(b, 1, dtype=torch.bool, device=device))
        for m in self.modalities:
            x = inputs[m]
            mod_tokens, mask = self._encode(m, x), x.mask
            if self.avca_block:  # one token per modality: the mean of its valid tokens
                w = mask.unsqueeze(-1).to(mod_tokens.dtype)
                mod_tokens = (mod_tokens * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)
                mask = mask[:, :1].new_ones(b, 1)
            tokens.append(mod_tokens)
            segments.append((AUDIO if m == "audio" else VIDEO, mask.shape[1]))
            valid.append(mask)
        seq, key_valid = torch.cat(tokens, dim=1), torch.cat(valid, dim=1)
        masks = layer_masks(tuple(segments), key_valid, self.patterns)  # block-sparse attention
        packed = key_valid if self.pack_tokens and not bool(key_valid.all()) else None
        out, maps = self.transformer(seq, masks, return_attention, packed)
        if self.avca_block:  # AVCA's residual around the whole block (Eq. 2.2)
            out = seq + out
        if self.cls_token is not None:
            return out[:, 0], maps
        # Table 3.3 "w/o class. token": average of the valid output tokens
        w = key_valid.unsqueeze(-1).to(out.dtype)
        return (out * w).sum(1) / w.sum(1), maps

    def embed_labels(self, w: torch.Tensor) -> torch.Tensor:
        """``[C, D_w]`` -> theta_w ``[C, d_out]``."""
        return self.w_proj(w)
