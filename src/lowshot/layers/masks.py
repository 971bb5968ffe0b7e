"""Attention-mask semantics, defined once for every audio-visual transformer in lowshot.

A token sequence is described by one modality id per token (``GLOBAL`` for class/latent
tokens, any other integer for a modality, e.g. ``AUDIO``/``VIDEO``) and a key-padding mask
(True = valid step). A *pattern* says which (query, key) pairs may interact:

- ``"full"``: every token attends to every valid token (A_c + A_self + A_x, thesis Eq. 3.12);
- ``"self"``: tokens attend within their own modality (A_c + A_self);
- ``"cross"``: tokens attend only to the other modalities (A_c + A_x, TCaF, Eq. 3.11).

Global tokens always attend to, and are attended by, every valid token (A_c). A row that
would otherwise have no admissible key (a padded query, or a single-modality input under the
cross pattern) attends to itself only, so no row is ever fully masked and softmax never
produces NaNs. Outputs of padded queries are meaningless and must be ignored by callers.

A hybrid schedule (AV-Diff: self attention in the first Z layers, full afterwards) is a
per-layer tuple of patterns, see :func:`layer_masks`.

:func:`attention_mask` is the dense ``[B, N, N]`` definition (what the explicit attention
path and the attention maps use); :class:`BlockMask` is the same mask for a sequence of
contiguous modality segments, from which attention computes only the allowed
(query segment x key segments) blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import torch

Pattern = Literal["full", "self", "cross"]
PATTERNS: tuple[str, ...] = ("full", "self", "cross")

#: modality id of tokens that attend to / are attended by everything (class token)
GLOBAL = -1
AUDIO = 0
VIDEO = 1


def attention_mask(
    modality_ids: torch.Tensor,
    key_padding: torch.Tensor | None,
    pattern: Pattern,
) -> torch.Tensor:
    """Boolean attention mask (True = query may attend to key).

    Args:
        modality_ids: ``[N]`` or ``[B, N]`` integer modality id of each token
            (:data:`GLOBAL` for class tokens).
        key_padding: ``[B, N]`` bool, True = valid token; None = all valid.
        pattern: ``"full"``, ``"self"`` or ``"cross"``.

    Returns:
        ``[B, N, N]`` bool mask (``[1, N, N]`` when both inputs are unbatched), indexed
        ``[batch, query, key]``.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"unknown attention pattern {pattern!r}; expected one of {PATTERNS}")
    ids = modality_ids if modality_ids.dim() == 2 else modality_ids.unsqueeze(0)
    q_ids, k_ids = ids[:, :, None], ids[:, None, :]
    is_global = (q_ids == GLOBAL) | (k_ids == GLOBAL)
    if pattern == "full":
        allowed = torch.ones_like(is_global)
    elif pattern == "self":
        allowed = q_ids == k_ids
    else:
        allowed = q_ids != k_ids
    allowed = allowed | is_global  # A_c: the class token sees and is seen by all
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, :].bool()
    # never a fully masked row: such a query attends to itself only
    empty = ~allowed.any(dim=-1, keepdim=True)
    eye = torch.eye(allowed.shape[-1], dtype=torch.bool, device=allowed.device)
    return allowed | (empty & eye)


def _allowed(pattern: Pattern, q_id: int, k_id: int) -> bool:
    """Whether tokens of modality ``q_id`` may attend to tokens of ``k_id`` (before padding)."""
    if GLOBAL in (q_id, k_id) or pattern == "full":
        return True
    return (q_id == k_id) if pattern == "self" else (q_id != k_id)


@dataclass(frozen=True)
class Block:
    """Consecutive query segments that attend to the same key segments.

    Attributes:
        queries: indices of the query segments (consecutive).
        keys: indices of the admissible key segments, in token order (empty: every query
            attends to itself).
        key_mask: ``[B, 1, 1, K]`` bool key padding of the concatenated keys, None = all valid.
        self_only: ``[B, 1, 1, 1]`` bool, True for samples without any valid key in ``keys``
            (their queries attend to themselves only); None = no such sample.
    """

    queries: tuple[int, ...]
    keys: tuple[int, ...]
    key_mask: torch.Tensor | None
    self_only: torch.Tensor | None


@dataclass(frozen=True)
class BlockMask:
    """:func:`attention_mask` of a sequence made of contiguous modality segments.

    Attributes:
        segments: ``(modality id, length)`` of each segment in token order, e.g.
            ``((GLOBAL, 1), (AUDIO, T_a), (VIDEO, T_v))``.
        key_padding: ``[B, N]`` bool, True = valid token; None = all valid.
        pattern: ``"full"``, ``"self"`` or ``"cross"``.
    """

    segments: tuple[tuple[int, int], ...]
    key_padding: torch.Tensor | None
    pattern: Pattern

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(
                f"unknown attention pattern {self.pattern!r}; expected one of {PATTERNS}"
            )

    @classmethod
    def from_ids(
        cls, modality_ids: torch.Tensor, key_padding: torch.Tensor | None, pattern: Pattern
    ) -> BlockMask:
        """Segments from the runs of equal ids of an ``[N]`` modality-id vector."""
        if modality_ids.dim() != 1:
            raise ValueError(
                f"BlockMask needs one [N] modality-id vector, got shape {tuple(modality_ids.shape)}"
            )
        ids, counts = torch.unique_consecutive(modality_ids.cpu(), return_counts=True)
        return cls(tuple(zip(ids.tolist(), counts.tolist())), key_padding, pattern)

    @property
    def modality_ids(self) -> torch.Tensor:
        """``[N]`` modality id of each token."""
        return torch.tensor([i for i, n in self.segments for _ in range(n)], dtype=torch.long)

    def dense(self) -> torch.Tensor:
        """The ``[B, N, N]`` boolean mask (``[1, N, N]`` without key padding)."""
        ids = self.modality_ids
        if self.key_padding is not None:
            ids = ids.to(self.key_padding.device)
        return attention_mask(ids, self.key_padding, self.pattern)

    @cached_property
    def dense_attn_mask(self) -> torch.Tensor | None:
        """``[B, 1, N, N]`` dense mask for a fused kernel (None: every key of every query)."""
        if self.key_padding is None and self.pattern == "full":
            return None
        return self.dense()[:, None]

    @property
    def lengths(self) -> list[int]:
        """Number of tokens of each segment."""
        return [n for _, n in self.segments]

    @cached_property
    def blocks(self) -> tuple[Block, ...]:
        """The attention blocks: consecutive query segments with the same keys share one."""
        groups: list[tuple[list[int], tuple[int, ...]]] = []
        for qi, (q_id, _) in enumerate(self.segments):
            keys = tuple(
                ki
                for ki, (k_id, _) in enumerate(self.segments)
                if _allowed(self.pattern, q_id, k_id)
            )
            if groups and groups[-1][1] == keys:
                groups[-1][0].append(qi)
            else:
                groups.append(([qi], keys))
        return tuple(self._block(tuple(queries), keys) for queries, keys in groups)

    def _block(self, queries: tuple[int, ...], keys: tuple[int, ...]) -> Block:
        if self.key_padding is None or not keys:
            return Block(queries, keys, None, None)
        parts = self.key_padding.bool().split(self.lengths, dim=1)
        valid = torch.cat([parts[k] for k in keys], dim=1)  # [B, K]
        if bool(valid.all()):
            return Block(queries, keys, None, None)
        has_key = valid.any(dim=1)
        self_only = None if bool(has_key.all()) else ~has_key[:, None, None, None]
        # samples without a valid key get an all-True mask (finite output, replaced by v)
        return Block(queries, keys, (valid | ~has_key[:, None])[:, None, None, :], self_only)


#: what attention layers accept: a :class:`BlockMask` (segments + pattern; block-sparse path for
#: long sequences) or a dense ``[B, N, N]`` bool tensor of any other shape of mask (e.g.
#: Zorro's streams, HiP's groups), indexed ``[batch, query, key]`` (True = may attend)
Mask = BlockMask | torch.Tensor


def dense_mask(mask: Mask) -> torch.Tensor:
    """The ``[B, N, N]`` bool tensor of ``mask`` (a :class:`BlockMask` or already dense)."""
    return mask if isinstance(mask, torch.Tensor) else mask.dense()


def layer_masks(
    modality_ids: torch.Tensor | tuple[tuple[int, int], ...],
    key_padding: torch.Tensor | None,
    patterns: Sequence[Pattern],
) -> list[BlockMask]:
    """One mask per layer for a (possibly hybrid) schedule; identical patterns share one.

    Args:
        modality_ids: ``[N]`` modality ids in contiguous runs (e.g. class token, audio,
            video), or the segments themselves (``((GLOBAL, 1), (AUDIO, T_a), ...)``).
        key_padding: ``[B, N]`` bool (True = valid) or None.
        patterns: per-layer patterns, e.g. ``("self", "self", "full", "full")``.

    Returns:
        ``len(patterns)`` :class:`BlockMask` s (``.dense()`` gives the ``[B, N, N]`` tensor).
    """
    cache: dict[str, BlockMask] = {}
    out = []
    for p in patterns:
        if p not in cache:
            cache[p] = (
                BlockMask(modality_ids, key_padding, p)
                if isinstance(modality_ids, tuple)
                else BlockMask.from_ids(modality_ids, key_padding, p)
            )
        out.append(cache[p])
    return out


def key_padding(lengths: torch.Tensor, t_max: int) -> torch.Tensor:
    """Key-padding mask of zero-padded sequences from their true lengths.

    Args:
        lengths: ``[B]`` true lengths.
        t_max: padded length ``T``.

    Returns:
        ``[B, T]`` bool, True where ``t < lengths[b]`` (a real, unpadded step).
    """
    return torch.arange(t_max, device=lengths.device)[None, :] < lengths[:, None]


def zero_value_key_padding(x: torch.Tensor) -> torch.Tensor:
    """The published AC padding test (air-cvpr23): a step is padding when its feature
    channel 0 is zero, so a real step whose channel 0 is zero (e.g. after a ReLU) counts as
    padding too. Only for the explicit legacy option of the AC models.

    Args:
        x: ``[B, T, D]`` zero-padded features.

    Returns:
        ``[B, T]`` bool, True where ``x[:, t, 0] != 0``.
    """
    return x[..., 0] != 0


def hybrid_schedule(depth: int, switch: int, fusion: str = "hybrid") -> tuple[Pattern, ...]:
    """Per-layer patterns of AV-Diff's fusion variants (thesis §4.4.1, Table 4.3).

    Args:
        depth: number of layers ``L``.
        switch: ``Z``, the number of leading self-attention layers (``hybrid`` only).
        fusion: ``hybrid`` (Z ``self`` layers, then ``full``), ``alternate`` (``self``,
            ``full``, ``self``, ...), or one pattern for every layer (``full``, ``self``, ``cross``).

    Returns:
        ``depth`` patterns, e.g. ``("self", "self", "full", "full")`` for ``(4, 2)``.
    """
    if not 0 <= switch <= depth:
        raise ValueError(f"the attention switch Z={switch} must lie in 0..{depth} (the number of layers)")
    if fusion == "hybrid":
        return ("self",) * switch + ("full",) * (depth - switch)
    if fusion == "alternate":
        return tuple("self" if i % 2 == 0 else "full" for i in range(depth))  # type: ignore[misc]
    if fusion in PATTERNS:
        return (fusion,) * depth  # type: ignore[return-value]
    raise ValueError(f"unknown fusion {fusion!r}; expected hybrid, alternate or one of {PATTERNS}")
