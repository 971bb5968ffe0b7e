"""The query attentions of layers/attention.py equal the adverb models' former modules."""

from __future__ import annotations

import pytest
import torch

from lowshot.layers.attention import QueryAttention, SlicedQueryAttention
from lowshot.layers.masks import key_padding, zero_value_key_padding
from lowshot.models.adverbs.attention import (
    ActionQueryAttention,
    SlicedSDPAttention,
    valid_steps,
)


def _inputs(seed: int, d: int = 16, dq: int = 12):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(9, 7, d, generator=g)
    lengths = torch.randint(1, 8, (9,), generator=g)
    x = x * key_padding(lengths, 7)[..., None]  # zero padding, as the readers produce
    x[0, 0, 0] = 0.0  # a real step whose channel 0 is zero
    return x, lengths, torch.randn(9, dq, generator=g)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("training", [False, True])
def test_query_attention_equals_action_query_attention(seed: int, training: bool) -> None:
    x, lengths, q = _inputs(seed)
    torch.manual_seed(seed)
    old = ActionQueryAttention(12, 16, 4, 3, 10, dropout=0.3).train(training)
    torch.manual_seed(seed)
    new = QueryAttention(12, 16, 4, 3, 10, dropout=0.3).train(training)
    assert list(old.state_dict()) == list(new.state_dict())
    for a, b in zip(old.state_dict().values(), new.state_dict().values()):
        assert torch.equal(a, b)
    torch.manual_seed(seed + 10)
    want = old(x, lengths, q)
    torch.manual_seed(seed + 10)
    got = new(x, q, key_padding(lengths, x.shape[1]))
    assert torch.equal(got, want)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("legacy", ["none", "zero_value", "unmasked_eval"])
def test_sliced_query_attention_equals_sliced_sdp_attention(
    seed: int, training: bool, legacy: str
) -> None:
    x, lengths, q = _inputs(seed)
    torch.manual_seed(seed)
    old = SlicedSDPAttention(
        16, 12, 4, 8, 10, dropout=0.3,
        legacy_zero_value_padding_mask=legacy == "zero_value",
        legacy_unmasked_eval=legacy == "unmasked_eval",
    ).train(training)  # fmt: skip
    torch.manual_seed(seed)
    new = SlicedQueryAttention(16, 12, 4, 8, 10, dropout=0.3).train(training)
    assert list(old.state_dict()) == list(new.state_dict())
    for a, b in zip(old.state_dict().values(), new.state_dict().values()):
        assert torch.equal(a, b)
    if legacy == "unmasked_eval" and not training:
        valid = None
    elif legacy == "zero_value":
        valid = zero_value_key_padding(x)
    else:
        valid = key_padding(lengths, x.shape[1])
    torch.manual_seed(seed + 10)
    want = old(x, lengths, q)
    torch.manual_seed(seed + 10)
    got = new(x, q, valid)
    assert torch.equal(got, want)


def test_key_padding_equals_valid_steps() -> None:
    lengths = torch.tensor([1, 4, 2])
    assert torch.equal(key_padding(lengths, 5), valid_steps(lengths, 5))
