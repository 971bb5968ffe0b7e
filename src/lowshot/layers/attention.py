"""The one multi-head attention implementation of lowshot, and a pre-norm transformer.

:class:`MultiHeadAttention` has two numerically equivalent paths: a fused one
(:func:`masked_attention`, used by default) and an explicit one that materialises the dense
attention maps (used when ``return_attention=True``, e.g. for visualisation). Masks are
:class:`~lowshot.layers.masks.BlockMask` s or dense ``[B, N, N]`` bool tensors (True = may attend). The fused path computes
only the allowed blocks of query/key segments (:func:`block_attention`) for sequences of
at least :data:`BLOCK_SPARSE_MIN_TOKENS` tokens, and all scores with the dense mask below
(where the fused kernel's per-call cost outweighs the saved scores; docs/benchmarks.md).

:class:`TransformerLayer` is the pre-norm layer of AVCA / TCaF (thesis Eqs. 3.3-3.4, 3.9,
3.13): ``x = x + Drop(Att(LN(x)))`` then ``x = x + FF(LN(x))`` with a GELU feed-forward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lowshot.layers.masks import BlockMask, Mask, dense_mask


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention (thesis Eqs. 3.5-3.10).

    Args:
        dim: token dimension ``D``.
        heads: number of heads ``H``.
        dim_head: per-head dimension ``d_head``.
        dropout: dropout after the output projection (``g^DL`` in Eq. 3.9).
    """

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        inner = heads * dim_head
        # the published models use bias-free q/k/v projections
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(
        self,
        x: torch.Tensor,
        mask: Mask | None = None,
        return_attention: bool = False,
        token_valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend.

        Args:
            x: ``[B, N, D]`` tokens, or packed ``[n, D]`` valid tokens when ``token_valid``
                is given (``n = token_valid.sum()``).
            mask: which query may attend to which key, or None (every key).
            return_attention: use the explicit path and return the maps.
            token_valid: ``[B, N]`` bool layout of packed tokens; padded positions get zero
                queries/keys/values (they must be masked as keys) and no output.

        Returns:
            ``([B, N, D] or [n, D], [B, H, N, N] or None)``.
        """
        qkv = self.to_qkv(x)
        if token_valid is not None:  # scatter packed projections into the padded layout
            padded = qkv.new_zeros(*token_valid.shape, qkv.shape[-1])
            padded[token_valid] = qkv
            qkv = padded
        b, n, _ = qkv.shape
        qkv = qkv.view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, H, N, d_head] (backward: one stack, not 3 zero-filled copies)
        attn = None
        if return_attention:
            dots = (q @ k.transpose(-1, -2)) / math.sqrt(self.dim_head)  # Eq. 3.10
            if mask is not None:
                dots = dots.masked_fill(~dense_mask(mask).to(dots.device)[:, None], float("-inf"))
            attn = dots.softmax(dim=-1)
            out = attn @ v
        elif mask is None:
            out = sdpa(q, k, v)
        else:
            out = masked_attention(q, k, v, mask)
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        if token_valid is not None:
            out = out[token_valid]
        return self.to_out(out), attn


def sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.scaled_dot_product_attention``, computed in fp32 for bf16 / fp16 inputs on CPU.

    Under CPU autocast (``train.precision=bf16``) the projections hand the kernel bf16
    ``q / k / v``; PyTorch's CPU flash-attention backward is several times slower in bf16
    than in fp32 at TCaF's shapes (docs/benchmarks.md, "Mixed precision"), so the scores are
    computed in fp32 (autocast off locally, inputs upcast) and the output is cast back.
    Other dtypes and devices call the kernel unchanged.

    Args:
        q / k / v: ``[B, H, N_q, d]`` / ``[B, H, N_k, d]`` / ``[B, H, N_k, d_v]``.
        attn_mask: bool (True = may attend) broadcastable to ``[B, H, N_q, N_k]``, or None.

    Returns:
        ``[B, H, N_q, d_v]`` in ``q``'s dtype.
    """
    if q.device.type != "cpu" or q.dtype not in (torch.bfloat16, torch.float16):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=attn_mask)
    return out.to(q.dtype)


#: sequence length from which :func:`masked_attention` computes only the allowed blocks:
#: below it one fused call over all ``N x N`` scores with the dense mask is faster on the
#: measured CPU (crossover near 126 tokens, benchmarks/tcaf_block_attention.py --sweep)
BLOCK_SPARSE_MIN_TOKENS = 192


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Mask) -> torch.Tensor:
    """Fused attention under ``mask``: :func:`block_attention` for a long sequence under a
    :class:`BlockMask`, else one ``scaled_dot_product_attention`` over all scores with the
    dense mask (same result).

    Args:
        q / k / v: ``[B, H, N, d]``.
        mask: the segments, key padding and pattern of the ``N`` tokens, or a dense
            ``[B, N, N]`` bool mask.

    Returns:
        ``[B, H, N, d]``.
    """
    if isinstance(mask, torch.Tensor):
        return sdpa(q, k, v, mask.to(q.device)[:, None])
    if q.shape[2] >= BLOCK_SPARSE_MIN_TOKENS:
        return block_attention(q, k, v, mask)
    dense = mask.dense_attn_mask
    return sdpa(q, k, v, None if dense is None else dense.to(q.device))


def block_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: BlockMask
) -> torch.Tensor:
    """Masked scaled dot-product attention computed on the allowed blocks only.

    Equal to attention with the dense ``mask.dense()`` (within float rounding): each block of
    query segments attends to the concatenation of its allowed key segments with a key
    padding mask; queries without any admissible key attend to themselves (output = their
    value), as in :func:`~lowshot.layers.masks.attention_mask`. Under the cross pattern
    (class token, audio, video) this computes ``N + 2 T_a T_v + T_a + T_v`` scores per head
    instead of ``N^2``.

    Args:
        q / k / v: ``[B, H, N, d]``.
        mask: the segments, key padding and pattern of the ``N`` tokens.

    Returns:
        ``[B, H, N, d]``.
    """
    blocks = mask.blocks
    if (
        len(blocks) == 1
        and len(blocks[0].keys) == len(mask.segments)
        and blocks[0].self_only is None
    ):
        return sdpa(q, k, v, blocks[0].key_mask)
    # split once (one backward concatenation) instead of slicing per block
    qs, ks, vs = (t.split(mask.lengths, dim=2) for t in (q, k, v))
    outs = []
    for block in blocks:
        vq = _cat([vs[i] for i in block.queries])
        if not block.keys:  # no admissible key segment: attend to itself
            outs.append(vq)
            continue
        out = sdpa(
            _cat([qs[i] for i in block.queries]),
            _cat([ks[i] for i in block.keys]),
            _cat([vs[i] for i in block.keys]),
            block.key_mask,
        )
        outs.append(out if block.self_only is None else torch.where(block.self_only, vq, out))
    return _cat(outs)


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along the token dimension (no copy for one part)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


class FeedForward(nn.Sequential):
    """``Linear(D, D_ff) -> GELU -> Dropout -> Linear(D_ff, D) -> Dropout`` (Eq. 3.13)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer (Eqs. 3.3-3.4).

    Args:
        dim / heads / dim_head: attention sizes.
        mlp_dim: feed-forward hidden size ``d_ff``.
        dropout: dropout of attention output and feed-forward (``drop_prob``).
        feed_forward: False drops the feed-forward block (thesis Table B.2 "w/o FF").
        shared_norm: one LayerNorm for both sub-blocks, as in the published TCaF code;
            False gives the usual two LayerNorms (published AVCA).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        dropout: float = 0.0,
        feed_forward: bool = True,
        shared_norm: bool = False,
    ) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, dim_head, dropout)
        self.ff = FeedForward(dim, mlp_dim, dropout) if feed_forward else None
        self.norm_ff = None if (shared_norm or not feed_forward) else nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        mask: Mask | None = None,
        return_attention: bool = False,
        token_valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[B, N, D] -> [B, N, D]`` (or packed ``[n, D]``, see :class:`MultiHeadAttention`)."""
        a, attn = self.attn(self.norm_attn(x), mask, return_attention, token_valid)
        x = x + a  # Eq. 3.4
        if self.ff is not None:
            norm = self.norm_ff if self.norm_ff is not None else self.norm_attn
            x = x + self.ff(norm(x))  # Eq. 3.3
        return x, attn


class TransformerStack(nn.Module):
    """``depth`` :class:`TransformerLayer` s; each layer gets its own mask (hybrid schedules).

    Args:
        depth: number of layers ``L``; other arguments as in :class:`TransformerLayer`.
    """

    def __init__(
        self,
        depth: int,
        dim: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        dropout: float = 0.0,
        feed_forward: bool = True,
        shared_norm: bool = False,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(dim, heads, dim_head, mlp_dim, dropout, feed_forward, shared_norm)
            for _ in range(depth)
        )

    def forward(
        self,
        x: torch.Tensor,
        masks: Sequence[Mask | None] | Mask | None = None,
        return_attention: bool = False,
        token_valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run all layers.

        Args:
            x: ``[B, N, D]``.
            masks: one mask for all layers, a per-layer sequence, or None.
            return_attention: collect ``[B, H, N, N]`` maps of every layer.
            token_valid: ``[B, N]`` bool; when given, the per-token parts of every layer
                (LayerNorm, projections, feed-forward) run on the valid tokens only (packed),
                and padded positions of the output are zero. Valid outputs are unchanged as
                long as the masks never let a valid query attend to a padded key.

        Returns:
            ``([B, N, D], list of maps)`` (the list is empty unless requested).
        """
        if masks is None or isinstance(masks, (BlockMask, torch.Tensor)):
            masks = [masks] * len(self.layers)
        if len(masks) != len(self.layers):
            raise ValueError(f"{len(masks)} masks for {len(self.layers)} layers")
        maps = []
        h = x[token_valid] if token_valid is not None else x  # [n, D] packed or [B, N, D]
        for layer, m in zip(self.layers, masks):
            h, attn = layer(h, m, return_attention, token_valid)
            if attn is not None:
                maps.append(attn)
        if token_valid is None:
            return h, maps
        out = h.new_zeros(x.shape)
        out[token_valid] = h
        return out, maps


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_valid: torch.Tensor | None = None,
    dropout: nn.Module | None = None,
) -> torch.Tensor:
    """Explicit scaled dot-product attention over padded keys, dropout on the weights.

    Masked logits get the dtype's lowest finite value: where a row has a valid key the
    weights equal those of ``-inf`` masking exactly, and a fully masked row gets uniform
    weights instead of NaNs.

    Args:
        q: ``[B, H, Q, d]`` queries.
        k / v: ``[B, H, T, d]`` keys and values.
        key_valid: ``[B, T]`` bool, True = may be attended (see
            :func:`lowshot.layers.masks.key_padding`); None = every key.
        dropout: applied to the attention weights (e.g. ``nn.Dropout``; train mode only).

    Returns:
        ``[B, H, Q, d]``.
    """
    logits = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # [B, H, Q, T]
    if key_valid is not None:
        logits = logits.masked_fill(~key_valid[:, None, None, :], torch.finfo(logits.dtype).min)
    attn = logits.softmax(dim=-1)
    if dropout is not None:
        attn = dropout(attn)
    return attn @ v


class QueryAttention(nn.Module):
    """Multi-head attention of one query vector (from another space) over a padded sequence.

    ReGaDa's action query over the time steps of a clip (thesis Eq. 6.2): separate
    bias-free ``to_q``/``to_k``/``to_v``, dropout on the attention weights, then an output
    linear layer.

    Args:
        query_dim: size of the query vector (``d_theta``).
        key_dim: size of each sequence step (``d_x``).
        heads: ``H``.
        head_dim: ``d_head``.
        out_dim: output size.
        dropout: dropout on the attention weights.
    """

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        heads: int,
        head_dim: int,
        out_dim: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(key_dim, inner, bias=False)
        self.to_v = nn.Linear(key_dim, inner, bias=False)
        self.drop = nn.Dropout(dropout)
        self.to_out = nn.Linear(inner, out_dim)

    def forward(
        self, x: torch.Tensor, query: torch.Tensor, key_valid: torch.Tensor | None
    ) -> torch.Tensor:
        """``x [B, T, key_dim]``, ``query [B, query_dim]``, ``key_valid [B, T]`` -> ``[B, out_dim]``."""
        b, t, _ = x.shape
        q = self.to_q(query).view(b, self.heads, 1, self.head_dim)
        k = self.to_k(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.to_v(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        out = attend(q, k, v, key_valid, self.drop)
        return self.to_out(out.reshape(b, self.heads * self.head_dim))


class SlicedQueryAttention(nn.Module):
    """Action-Modifiers style query attention: the step features and the query are cut
    into ``heads`` slices that share one key, one value and one query projection.

    Args:
        key_dim: size of each step (``d_model``); divisible by ``heads``.
        query_dim: size of the query; divisible by ``heads``.
        heads: number of slices/heads.
        d_k: total key/value size (``d_k / heads`` per head); divisible by ``heads``.
        out_dim: output size.
        dropout: dropout on the attention weights.
    """

    def __init__(
        self, key_dim: int, query_dim: int, heads: int, d_k: int, out_dim: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if key_dim % heads or query_dim % heads or d_k % heads:
            raise ValueError("key_dim, query_dim and d_k must be divisible by heads")
        self.heads = heads
        self.q_slice = query_dim // heads
        self.k_head = d_k // heads
        self.to_k = nn.Linear(key_dim // heads, self.k_head)
        self.to_v = nn.Linear(key_dim // heads, self.k_head)
        self.to_q = nn.Linear(self.q_slice, self.k_head)
        self.to_out = nn.Linear(d_k, out_dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, query: torch.Tensor, key_valid: torch.Tensor | None
    ) -> torch.Tensor:
        """``x [B, T, key_dim]``, ``query [B, query_dim]``, ``key_valid [B, T]`` or None
        (no mask) -> ``[B, out_dim]``."""
        b, t, d = x.shape
        xs = x.view(b, t, self.heads, d // self.heads)
        k = self.to_k(xs).transpose(1, 2)  # [B, H, T, k_head]
        v = self.to_v(xs).transpose(1, 2)
        q = self.to_q(query.view(b, self.heads, self.q_slice)).unsqueeze(2)  # [B, H, 1, k_head]
        out = attend(q, k, v, key_valid, self.drop)
        return self.to_out(out.reshape(b, self.heads * self.k_head))
