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
"""

from __future__ import annotations

from collections.abc import Sequence
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


def layer_masks(
    modality_ids: torch.Tensor,
    key_padding: torch.Tensor | None,
    patterns: Sequence[Pattern],
) -> list[torch.Tensor]:
    """One mask per layer for a (possibly hybrid) schedule; identical patterns share a tensor.

    Args:
        modality_ids: ``[N]`` or ``[B, N]``.
        key_padding: ``[B, N]`` bool (True = valid) or None.
        patterns: per-layer patterns, e.g. ``("self", "self", "full", "full")``.

    Returns:
        ``len(patterns)`` masks of shape ``[B, N, N]``.
    """
    cache: dict[str, torch.Tensor] = {}
    out = []
    for p in patterns:
        if p not in cache:
            cache[p] = attention_mask(modality_ids, key_padding, p)
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
