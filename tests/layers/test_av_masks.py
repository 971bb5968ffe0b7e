"""Truth tables and invariants of the attention-mask semantics (lowshot.layers.masks)."""

from __future__ import annotations

import pytest
import torch

from lowshot.layers.masks import AUDIO, GLOBAL, VIDEO, attention_mask, layer_masks

pytestmark = pytest.mark.usefixtures("one_thread")

# tokens: [cls, a1, a2, v1, v2]
IDS = torch.tensor([GLOBAL, AUDIO, AUDIO, VIDEO, VIDEO])
T, F = True, False
TABLES = {
    "full": [[T, T, T, T, T]] * 5,
    "self": [
        [T, T, T, T, T],
        [T, T, T, F, F],
        [T, T, T, F, F],
        [T, F, F, T, T],
        [T, F, F, T, T],
    ],
    "cross": [
        [T, T, T, T, T],
        [T, F, F, T, T],
        [T, F, F, T, T],
        [T, T, T, F, F],
        [T, T, T, F, F],
    ],
}


@pytest.mark.parametrize("pattern", ["full", "self", "cross"])
def test_truth_table_without_padding(pattern: str) -> None:
    mask = attention_mask(IDS, None, pattern)
    assert mask.shape == (1, 5, 5) and mask.dtype == torch.bool
    assert mask[0].tolist() == TABLES[pattern]


@pytest.mark.parametrize("pattern", ["full", "self", "cross"])
def test_padded_keys_are_never_attended_and_no_row_is_empty(pattern: str) -> None:
    valid = torch.tensor([[T, T, F, T, F], [T, T, T, T, T]])
    mask = attention_mask(IDS, valid, pattern)
    assert mask.shape == (2, 5, 5)
    expected = torch.tensor(TABLES[pattern]) & valid[0][None, :]
    for row in (0, 1, 3):  # valid queries: the pattern restricted to valid keys
        assert mask[0, row].tolist() == expected[row].tolist()
    for row in (2, 4):  # padded queries: outputs are ignored, but never an empty row
        assert mask[0, row].any()
    assert mask[1].tolist() == TABLES[pattern]
    assert mask.any(-1).all()


def test_class_token_attends_and_is_attended_by_every_valid_token() -> None:
    valid = torch.tensor([[T, T, F, T, T]])
    for pattern in ("full", "self", "cross"):
        m = attention_mask(IDS, valid, pattern)[0]
        assert m[0].tolist() == valid[0].tolist()
        assert m[valid[0], 0].all()


def test_single_modality_cross_has_no_empty_row() -> None:
    ids = torch.tensor([AUDIO, AUDIO, AUDIO])
    m = attention_mask(ids, None, "cross")[0]
    assert torch.equal(m, torch.eye(3, dtype=torch.bool))  # falls back to attending to itself


def test_batched_modality_ids() -> None:
    ids = torch.stack([IDS, torch.tensor([GLOBAL, VIDEO, VIDEO, AUDIO, AUDIO])])
    m = attention_mask(ids, None, "self")
    assert m[0].tolist() == m[1].tolist() == TABLES["self"]


def test_hybrid_schedule_per_layer() -> None:
    masks = layer_masks(IDS, None, ("self", "self", "full"))
    assert len(masks) == 3
    assert masks[0] is masks[1]  # identical patterns share one mask
    assert masks[0].dense()[0].tolist() == TABLES["self"]
    assert masks[2].dense()[0].tolist() == TABLES["full"]


def test_unknown_pattern_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown attention pattern"):
        attention_mask(IDS, None, "diagonal")  # type: ignore[arg-type]
