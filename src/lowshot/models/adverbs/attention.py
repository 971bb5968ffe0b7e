"""Single-query attention over a padded feature sequence (the action query of adverb models).

:mod:`lowshot.layers.attention` implements self-attention over one token set; the adverb
models attend with *one* query vector from another space (the action embedding) over the
time steps of a clip, so they use these two small modules instead.

* :class:`ActionQueryAttention`: ReGaDa's multi-head attention (thesis Eq. 6.2) with
  separate bias-free ``to_q``/``to_k``/``to_v`` and an output linear layer.
* :class:`SlicedSDPAttention`: Action Modifiers / AC style: the feature vector is cut into
  ``H`` slices that share one key and one value projection; the query is cut into ``H``
  parts.

Padding masks come from true lengths (``t < length``). The published AC code
(air-cvpr23 ``model.py`` / ``attention.py``) marks a step as padding when its feature
channel 0 is zero (so a real step whose channel 0 is zero, e.g. after S3D's ReLU, is
masked too) and calls the attention without any mask at evaluation; both are available as
explicit compatibility options on :class:`SlicedSDPAttention` (off by default).
"""

from __future__ import annotations

import torch
from torch import nn


def valid_steps(lengths: torch.Tensor, t_max: int) -> torch.Tensor:
    """``[B, T]`` bool, True where ``t < lengths[b]`` (real, unpadded steps)."""
    return torch.arange(t_max, device=lengths.device)[None, :] < lengths[:, None]


class ActionQueryAttention(nn.Module):
    """Multi-head attention of one query over time (Eq. 6.2), then ``W_attn``.

    Args:
        query_dim: size of the query vector (``d_theta``).
        feature_dim: size of each time step (``d_x``).
        heads: ``H_x``.
        head_dim: ``d_head_x``.
        out_dim: output size (``d_dim``).
        dropout: dropout on the attention weights (``drop_attn``).
    """

    def __init__(
        self,
        query_dim: int,
        feature_dim: int,
        heads: int,
        head_dim: int,
        out_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(feature_dim, inner, bias=False)
        self.to_v = nn.Linear(feature_dim, inner, bias=False)
        self.drop = nn.Dropout(dropout)
        self.to_out = nn.Linear(inner, out_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Attend.

        Args:
            x: ``[B, T, d_x]`` zero-padded features.
            lengths: ``[B]`` true lengths (>= 1).
            query: ``[B, d_theta]`` query vectors.

        Returns:
            ``[B, out_dim]``.
        """
        b, t, _ = x.shape
        q = self.to_q(query).view(b, self.heads, 1, self.head_dim)
        k = self.to_k(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.to_v(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        logits = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5  # [B, H, 1, T]
        logits = logits.masked_fill(~valid_steps(lengths, t)[:, None, None, :], float("-inf"))
        attn = self.drop(logits.softmax(dim=-1))
        out = (attn @ v).reshape(b, self.heads * self.head_dim)
        return self.to_out(out)


class SlicedSDPAttention(nn.Module):
    """Action-Modifiers style attention with shared per-slice key/value projections.

    Args:
        feature_dim: ``d_model`` of the features (1024); must be divisible by ``heads``.
        query_dim: size of the query (512); must be divisible by ``heads``.
        heads: number of slices/heads (4).
        d_k: total key/value size (512), i.e. ``d_k / heads`` per head.
        out_dim: output size (512).
        dropout: dropout on the attention weights (published: 0.1, train mode only).
        legacy_zero_value_padding_mask: mark step ``t`` as padding when ``x[:, t, 0] == 0``
            (feature channel 0 is zero), as the published AC training does; a real step
            whose channel 0 is zero is then masked too. Off by default.
        legacy_unmasked_eval: do not mask padding when not training, as the published AC
            evaluation does: a clip then also attends to the zero padding up to the longest
            clip of its evaluation batch, so its scores depend on the batch it lands in
            (published: 512 unshuffled test rows). Off by default.
    """

    def __init__(
        self,
        feature_dim: int,
        query_dim: int,
        heads: int,
        d_k: int,
        out_dim: int,
        dropout: float = 0.1,
        legacy_zero_value_padding_mask: bool = False,
        legacy_unmasked_eval: bool = False,
    ) -> None:
        super().__init__()
        if feature_dim % heads or query_dim % heads or d_k % heads:
            raise ValueError("feature_dim, query_dim and d_k must be divisible by heads")
        self.heads = heads
        self.q_slice = query_dim // heads
        self.k_head = d_k // heads
        self.to_k = nn.Linear(feature_dim // heads, self.k_head)
        self.to_v = nn.Linear(feature_dim // heads, self.k_head)
        self.to_q = nn.Linear(self.q_slice, self.k_head)
        self.to_out = nn.Linear(d_k, out_dim)
        self.drop = nn.Dropout(dropout)
        self.legacy_zero_value_padding_mask = legacy_zero_value_padding_mask
        self.legacy_unmasked_eval = legacy_unmasked_eval

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """``x [B, T, d_model]``, ``lengths [B]``, ``query [B, query_dim]`` -> ``[B, out_dim]``."""
        b, t, d = x.shape
        xs = x.view(b, t, self.heads, d // self.heads)
        k = self.to_k(xs).transpose(1, 2)  # [B, H, T, k_head]
        v = self.to_v(xs).transpose(1, 2)
        q = self.to_q(query.view(b, self.heads, self.q_slice)).unsqueeze(2)  # [B, H, 1, k_head]
        logits = (q @ k.transpose(-1, -2)) * self.k_head**-0.5  # [B, H, 1, T]
        if not (self.legacy_unmasked_eval and not self.training):
            if self.legacy_zero_value_padding_mask:
                valid = x[..., 0] != 0
            else:
                valid = valid_steps(lengths, t)
            logits = logits.masked_fill(~valid[:, None, None, :], -1e20)
        out = (self.drop(logits.softmax(dim=-1)) @ v).reshape(b, self.heads * self.k_head)
        return self.to_out(out)
