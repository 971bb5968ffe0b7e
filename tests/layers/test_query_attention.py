"""Query attentions of layers/attention.py and the key-padding masks of layers/masks.py.

The former adverb modules (``models/adverbs/attention.py``) were proven equal to these
layers bit for bit before they were deleted (git history); here the layers are checked
against a per-head reference written from the equations, with ``-inf`` masking.
"""

from __future__ import annotations

import pytest
import torch

from lowshot.layers.attention import QueryAttention, SlicedQueryAttention, attend
from lowshot.layers.masks import key_padding, zero_value_key_padding


def _inputs(seed: int, d: int = 16, dq: int = 12):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(9, 7, d, generator=g)
    lengths = torch.randint(1, 8, (9,), generator=g)
    x = x * key_padding(lengths, 7)[..., None]  # zero padding, as the readers produce
    x[0, 0, 0] = 0.0  # a real step whose channel 0 is zero
    return x, lengths, torch.randn(9, dq, generator=g)


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor | None):
    """softmax(q k^T / sqrt(d), masked with -inf) v, one row and head at a time."""
    out = torch.empty_like(q)
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            logits = q[b, h] @ k[b, h].T / q.shape[-1] ** 0.5
            if valid is not None:
                logits = logits.masked_fill(~valid[b], float("-inf"))
            out[b, h] = logits.softmax(-1) @ v[b, h]
    return out


def test_key_padding_masks() -> None:
    lengths = torch.tensor([1, 4, 2])
    want = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(key_padding(lengths, 5), want)
    x = torch.ones(1, 3, 2)
    x[0, 1, 0] = 0.0  # channel 0 zero, channel 1 not: still padding under the published rule
    assert zero_value_key_padding(x).tolist() == [[True, False, True]]


@pytest.mark.parametrize("seed", [0, 1])
def test_query_attention_follows_the_equations(seed: int) -> None:
    x, lengths, query = _inputs(seed)
    torch.manual_seed(seed)
    m = QueryAttention(12, 16, 4, 3, 10, dropout=0.3).eval()
    valid = key_padding(lengths, 7)
    q = m.to_q(query).view(9, 4, 1, 3)
    k = m.to_k(x).view(9, 7, 4, 3).transpose(1, 2)
    v = m.to_v(x).view(9, 7, 4, 3).transpose(1, 2)
    want = m.to_out(_reference(q, k, v, valid).reshape(9, 12))
    assert torch.allclose(m(x, query, valid), want, atol=1e-6)


@pytest.mark.parametrize("masked", [True, False])
def test_sliced_query_attention_shares_projections_across_slices(masked: bool) -> None:
    x, lengths, query = _inputs(3)
    torch.manual_seed(0)
    m = SlicedQueryAttention(16, 12, 4, 8, 10, dropout=0.3).eval()
    valid = key_padding(lengths, 7) if masked else None
    xs = x.view(9, 7, 4, 4)
    k, v = m.to_k(xs).transpose(1, 2), m.to_v(xs).transpose(1, 2)
    q = m.to_q(query.view(9, 4, 3)).unsqueeze(2)
    want = m.to_out(_reference(q, k, v, valid).reshape(9, 8))
    assert torch.allclose(m(x, query, valid), want, atol=1e-6)
    with pytest.raises(ValueError, match="divisible"):
        SlicedQueryAttention(15, 12, 4, 8, 10)


def test_attention_weight_dropout_is_train_only_and_full_masks_stay_finite() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(8, 2, 1, 4), torch.randn(8, 2, 5, 4), torch.randn(8, 2, 5, 4)
    drop = torch.nn.Dropout(0.5)
    assert not torch.allclose(attend(q, k, v, None, drop.train()), attend(q, k, v))
    assert torch.equal(attend(q, k, v, None, drop.eval()), attend(q, k, v))
    none_valid = torch.zeros(8, 5, dtype=torch.bool)
    out = attend(q, k, v, none_valid)  # a fully masked row: uniform weights, not NaN
    assert torch.allclose(out, v.mean(dim=2, keepdim=True), atol=1e-6)
