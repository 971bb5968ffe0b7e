"""ReGaDa: residually gated adverb-action text encoder + action-query video encoder.

Citation: T. Hummel, O.-B. Mercea, A. S. Koepke, Z. Akata, "Video-adverb retrieval with
compositional adverb-action embeddings", BMVC 2023 (thesis chapter 6, Eqs. 6.1-6.3);
code ExplainableML/ReGaDa @ d9d0bfb (read, not copied).

Differences from the published code:

* device-agnostic (no ``.cuda()``); the frozen word embeddings are buffers, not frozen
  ``nn.Embedding`` tables;
* the ablations of Tables 6.3 and 6.5 are constructor switches (``main``/``aux`` inputs,
  ``residual``, ``sigmoid``, ``shared_weights``) instead of separate code paths;
* the TIRG composition used as a baseline (thesis §6.5, unreleased) is
  :class:`TIRGComposer`, following google/tirg's gating/residual blocks.

As published, the text encoder always embeds *all* adverb x action pairs at once, so its
BatchNorm normalises over the set of pairs, not over the video batch. Because every pair
input is a row of a small table (adverbs, actions or phrases), the first BatchNorm +
Linear of each branch is computed per table row and gathered
(:func:`indexed_bn_linear`): the same values and BatchNorm statistics as on the expanded
``[A * V, 2 d]`` input, at a fraction of the cost (the published code expands first).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lowshot._registry import MODELS
from lowshot.layers.attention import QueryAttention
from lowshot.layers.masks import key_padding

Main = Literal["adverb", "action", "composition"]
Aux = Literal["action", "adverb"]


@dataclass(frozen=True)
class VideoEncoderConfig:
    """Sizes of the action-query video encoder (Eqs. 6.2-6.3; published ``regada.yaml``).

    Attributes:
        emb_dim: ``d_dim``, the joint embedding size.
        heads: ``H_x`` (head size ``emb_dim // heads``).
        video_layers: ``N_proj``.
        video_dropout: ``drop_attn`` = ``drop_proj``.
    """

    emb_dim: int = 400
    heads: int = 4
    video_layers: int = 2
    video_dropout: float = 0.1


@dataclass(frozen=True)
class ReGaDaNetConfig(VideoEncoderConfig):
    """Architecture of ReGaDa: the video encoder plus the composer (Eq. 6.1).

    Attributes:
        text_dropout / layers_gated / layers_residual: ``drop_g``, ``N_g``, ``N_r``.
        main / aux: inputs of the composer (Table 6.3); ``"composition"`` needs phrase
            embeddings.
        residual / sigmoid / shared_weights: Table 6.5 switches.
    """

    text_dropout: float = 0.7
    layers_gated: int = 4
    layers_residual: int = 3
    main: Main = "adverb"
    aux: Aux = "action"
    residual: bool = True
    sigmoid: bool = True
    shared_weights: bool = False

    @classmethod
    def video_only(cls, video: VideoEncoderConfig, **changes: object) -> ReGaDaNetConfig:
        """This architecture with ``video``'s encoder sizes (other fields default or ``changes``)."""
        base = {f.name: getattr(video, f.name) for f in fields(VideoEncoderConfig)}
        return cls(**base, **changes)  # type: ignore[arg-type]


def gate_mlp(dim_in: int, dim_out: int, n_layers: int, dropout: float) -> nn.Sequential:
    """``BN(dim_in)``, ``(n_layers-1) x [Linear, Dropout, LeakyReLU(0.2)]``, ``Linear -> dim_out``."""
    if n_layers < 1:
        raise ValueError("an MLP needs at least one layer")
    layers: list[nn.Module] = [nn.BatchNorm1d(dim_in)]
    for _ in range(n_layers - 1):
        layers += [nn.Linear(dim_in, dim_in), nn.Dropout(dropout), nn.LeakyReLU(0.2)]
    layers.append(nn.Linear(dim_in, dim_out))
    return nn.Sequential(*layers)


def indexed_bn_linear(
    bn: nn.BatchNorm1d, linear: nn.Linear, parts: list[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """``linear(bn(cat([table[idx] for table, idx in parts], -1)))`` without expanding the tables.

    BatchNorm statistics over the ``P`` gathered rows are row-count-weighted table
    statistics (exact); running statistics are updated as ``nn.BatchNorm1d`` would
    (unbiased variance with ``n = P``).

    Args:
        bn: BatchNorm over the concatenated features (``sum d_k``).
        linear: the Linear that follows it.
        parts: ``(table [n_k, d_k], idx [P])`` per concatenated block, in feature order.

    Returns:
        ``[P, linear.out_features]``.
    """
    n_rows = parts[0][1].numel()
    out = linear.bias
    offset = 0
    update = bn.training and bn.track_running_stats
    for table, idx in parts:
        sl = slice(offset, offset + table.shape[1])
        offset += table.shape[1]
        if bn.training:
            w = torch.bincount(idx, minlength=table.shape[0]).to(table.dtype) / n_rows  # [n_k]
            mean = w @ table
            var = w @ (table - mean) ** 2  # biased, as used for normalisation
            if update:
                with torch.no_grad():
                    m = bn.momentum if bn.momentum is not None else 0.0
                    bn.running_mean[sl].mul_(1 - m).add_(m * mean.detach())
                    unbiased = var.detach() * n_rows / max(n_rows - 1, 1)
                    bn.running_var[sl].mul_(1 - m).add_(m * unbiased)
        else:
            mean, var = bn.running_mean[sl], bn.running_var[sl]
        normed = (table - mean) * torch.rsqrt(var + bn.eps) * bn.weight[sl] + bn.bias[sl]
        out = out + (normed @ linear.weight[:, sl].T)[idx]
    if update:
        bn.num_batches_tracked.add_(1)
    return out


class ResidualGatedComposer(nn.Module):
    """Eq. 6.1: ``o = w_g * sigma(W_gate([main; aux])) * main + w_r * W_res([main; aux])``.

    Args:
        cfg: ``emb_dim`` (``d_dim`` of ``main`` and ``aux``), ``layers_gated`` (``N_g``
            layers of ``W_gate``), ``layers_residual`` (``N_r`` layers of ``W_res``),
            ``text_dropout`` (``drop_g``) and the Table 6.5 switches ``residual`` (keep the
            residual branch), ``sigmoid`` (squash the gate) and ``shared_weights``
            (``W_res`` is ``W_gate``).
    """

    def __init__(self, cfg: ReGaDaNetConfig) -> None:
        super().__init__()
        dim = cfg.emb_dim
        self.gate = gate_mlp(2 * dim, dim, cfg.layers_gated, cfg.text_dropout)
        self.res = None
        if cfg.residual and not cfg.shared_weights:
            self.res = gate_mlp(2 * dim, dim, cfg.layers_residual, cfg.text_dropout)
        self.residual, self.sigmoid, self.shared = cfg.residual, cfg.sigmoid, cfg.shared_weights
        self.w_gate = nn.Parameter(torch.tensor(1.0))
        self.w_res = nn.Parameter(torch.tensor(1.0))

    def forward(self, main: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """``main, aux [P, dim]`` -> ``[P, dim]`` (reference implementation of Eq. 6.1)."""
        x = torch.cat([main, aux], dim=-1)
        return self._combine(self.gate(x), self.res(x) if self.res is not None else None, main)

    def forward_indexed(
        self, main: torch.Tensor, main_idx: torch.Tensor, aux: torch.Tensor, aux_idx: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 6.1 for ``main[main_idx]`` and ``aux[aux_idx]`` without expanding the tables.

        Args:
            main: ``[n_m, dim]`` table; aux: ``[n_a, dim]`` table.
            main_idx / aux_idx: ``[P]`` row of each pair in the tables.

        Returns:
            ``[P, dim]``, equal to ``forward(main[main_idx], aux[aux_idx])``.
        """
        parts = [(main, main_idx), (aux, aux_idx)]

        def branch(mlp: nn.Sequential) -> torch.Tensor:
            return mlp[2:](indexed_bn_linear(mlp[0], mlp[1], parts))  # type: ignore[arg-type]

        gate = branch(self.gate)  # gate before residual: same dropout RNG order as forward()
        res = branch(self.res) if self.res is not None else None
        return self._combine(gate, res, main[main_idx])

    def _combine(self, g: torch.Tensor, r: torch.Tensor | None, main: torch.Tensor) -> torch.Tensor:
        out = self.w_gate * (torch.sigmoid(g) if self.sigmoid else g) * main
        if self.residual:
            out = out + self.w_res * (g if self.shared else r)
        return out


class TIRGComposer(nn.Module):
    """TIRG composition (Vo et al., CVPR 2019; google/tirg): ``w_g * sigma(G) * main + w_r * R``.

    ``G = BN -> ReLU -> Linear(2d, d)``; ``R = BN -> ReLU -> Linear(2d, 2d) -> ReLU ->
    Linear(2d, d)``; weights initialised to (1, 10). In the adverb baseline the main input
    is the action embedding, modified by the adverb (thesis §6.5).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.BatchNorm1d(2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.res = nn.Sequential(
            nn.BatchNorm1d(2 * dim),
            nn.ReLU(),
            nn.Linear(2 * dim, 2 * dim),
            nn.ReLU(),
            nn.Linear(2 * dim, dim),
        )
        self.w_gate = nn.Parameter(torch.tensor(1.0))
        self.w_res = nn.Parameter(torch.tensor(10.0))

    def forward(self, main: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
        """``main, aux [P, dim]`` -> ``[P, dim]``."""
        x = torch.cat([main, aux], dim=-1)
        return self.w_gate * torch.sigmoid(self.gate(x)) * main + self.w_res * self.res(x)


class VideoEncoder(nn.Module):
    """Action-focused video embedding (Eqs. 6.2-6.3): attention, then ``N_proj`` x
    [Linear, LayerNorm, ReLU, Dropout] (no dropout after the last layer).

    Args:
        feature_dim: ``d_x``.
        query_dim: ``d_theta``.
        cfg: ``emb_dim`` (``d_dim``), ``heads`` (``H_x``, head size ``emb_dim // heads``),
            ``video_layers`` (``N_proj``), ``video_dropout`` (``drop_attn`` = ``drop_proj``).
    """

    def __init__(self, feature_dim: int, query_dim: int, cfg: VideoEncoderConfig) -> None:
        super().__init__()
        dim, dropout = cfg.emb_dim, cfg.video_dropout
        self.attn = QueryAttention(
            query_dim, feature_dim, cfg.heads, dim // cfg.heads, dim, dropout
        )
        layers: list[nn.Module] = []
        for i in range(cfg.video_layers):
            layers += [nn.Linear(dim, dim), nn.LayerNorm(dim), nn.ReLU()]
            if i < cfg.video_layers - 1:
                layers.append(nn.Dropout(dropout))
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``x [B, T, d_x]``, ``lengths [B]``, ``query [B, d_theta]`` -> ``[B, dim]``."""
        return self.proj(self.attn(x, query, key_padding(lengths, x.shape[1])))


@MODELS.register("adverbs.regada")
class ReGaDa(nn.Module):
    """Text and video encoders of ReGaDa over a fixed vocabulary.

    Args:
        adverb_emb: ``[A, d_theta]`` frozen adverb word embeddings.
        action_emb: ``[V, d_theta]`` frozen action word embeddings (also the video queries).
        feature_dim: ``d_x`` of the video features.
        cfg: the architecture (:class:`ReGaDaNetConfig`).
        pair_emb: ``[A * V, d_theta]`` frozen phrase embeddings (adverb-major), needed by
            ``cfg.main == "composition"``.
        composer: ``"regada"`` (Eq. 6.1) or ``"tirg"`` (baseline; ignores the composer
            fields of ``cfg``).
    """

    def __init__(
        self,
        adverb_emb: torch.Tensor,
        action_emb: torch.Tensor,
        feature_dim: int,
        cfg: ReGaDaNetConfig,
        pair_emb: torch.Tensor | None = None,
        composer: Literal["regada", "tirg"] = "regada",
    ) -> None:
        super().__init__()
        main, aux = cfg.main, cfg.aux
        if main == aux:
            raise ValueError(f"main and auxiliary inputs must differ (both '{main}')")
        if main == "composition" and pair_emb is None:
            raise ValueError("main='composition' needs phrase embeddings (pair_emb)")
        self.register_buffer("adverb_emb", adverb_emb.float().clone())
        self.register_buffer("action_emb", action_emb.float().clone())
        self.register_buffer("pair_emb", None if pair_emb is None else pair_emb.float().clone())
        self.n_adverbs, self.n_actions = adverb_emb.shape[0], action_emb.shape[0]
        self.main, self.aux = main, aux
        d_theta = adverb_emb.shape[1]
        self.proj_main = nn.Linear(d_theta, cfg.emb_dim)
        self.proj_aux = nn.Linear(d_theta, cfg.emb_dim)
        if composer == "regada":
            self.composer: nn.Module = ResidualGatedComposer(cfg)
        else:
            self.composer = TIRGComposer(cfg.emb_dim)
        self.video = VideoEncoder(feature_dim, action_emb.shape[1], cfg)

    def _pair_inputs(self, which: str, proj: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected input table and the row of each pair: (``[n, dim]``, ``[A * V]``)."""
        a, v = self.n_adverbs, self.n_actions
        pairs = torch.arange(a * v, device=self.adverb_emb.device)
        if which == "adverb":
            return proj(self.adverb_emb), pairs // v
        if which == "action":
            return proj(self.action_emb), pairs % v
        return proj(self.pair_emb), pairs

    def text_embeddings(self) -> torch.Tensor:
        """``[A * V, dim]`` composed embeddings of all pairs, adverb-major."""
        main, main_idx = self._pair_inputs(self.main, self.proj_main)
        aux, aux_idx = self._pair_inputs(self.aux, self.proj_aux)
        if isinstance(self.composer, ResidualGatedComposer):
            return self.composer.forward_indexed(main, main_idx, aux, aux_idx)
        return self.composer(main[main_idx], aux[aux_idx])

    def video_embeddings(
        self, x: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``x [B, T, d_x]``, ``lengths [B]``, ``actions [B]`` (query action index) -> ``[B, dim]``."""
        return self.video(x, lengths, self.action_emb[actions])

    @staticmethod
    def cosine(video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Cosine similarity ``[B, dim] x [P, dim] -> [B, P]``."""
        return F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T
