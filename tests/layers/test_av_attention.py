"""The one attention implementation: block-sparse fused == explicit dense, mask invariances."""

from __future__ import annotations

import pytest
import torch

from lowshot.layers.attention import MultiHeadAttention, TransformerStack
from lowshot.layers.masks import AUDIO, GLOBAL, VIDEO, BlockMask, layer_masks

pytestmark = pytest.mark.usefixtures("one_thread")

TA, TV, DIM = 4, 5, 24


def _ids(cls: bool = True) -> torch.Tensor:
    head = [GLOBAL] if cls else []
    return torch.tensor(head + [AUDIO] * TA + [VIDEO] * TV)


def _stack(depth: int = 2) -> TransformerStack:
    torch.manual_seed(0)
    return TransformerStack(depth, DIM, heads=3, dim_head=8, mlp_dim=16).eval()


@pytest.mark.parametrize("pattern", ["full", "self", "cross"])
def test_fused_and_explicit_paths_agree(pattern: str) -> None:
    torch.manual_seed(0)
    attn = MultiHeadAttention(DIM, heads=3, dim_head=8).eval()
    x = torch.randn(2, 1 + TA + TV, DIM)
    valid = torch.ones(2, 1 + TA + TV, dtype=torch.bool)
    valid[0, -2:] = False
    block = BlockMask.from_ids(_ids(), valid, pattern)
    mask = block.dense()
    fused, none = attn(x, block)
    explicit, maps = attn(x, block, return_attention=True)
    assert none is None and maps is not None and maps.shape == (2, 3, 10, 10)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    assert torch.all(maps.masked_select(~mask[:, None].expand_as(maps)) == 0)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 3, 10))


def test_self_pattern_isolates_modalities_without_class_token() -> None:
    model = _stack()
    masks = layer_masks(_ids(cls=False), None, ("self", "self"))
    x = torch.randn(2, TA + TV, DIM)
    x2 = x.clone()
    x2[:, TA:] = torch.randn(2, TV, DIM)  # change only the visual tokens
    y, _ = model(x, masks)
    y2, _ = model(x2, masks)
    torch.testing.assert_close(y[:, :TA], y2[:, :TA])  # audio outputs unchanged
    x3 = x.clone()
    x3[:, :TA] = torch.randn(2, TA, DIM)  # and vice versa
    y3, _ = model(x3, masks)
    torch.testing.assert_close(y[:, TA:], y3[:, TA:])
    # sanity: under the cross pattern the audio outputs do depend on the visual inputs
    cross = layer_masks(_ids(cls=False), None, ("cross", "cross"))
    assert not torch.allclose(model(x, cross)[0][:, :TA], model(x2, cross)[0][:, :TA])


@pytest.mark.parametrize("pattern", ["full", "self", "cross"])
def test_padding_does_not_change_valid_outputs(pattern: str) -> None:
    model = _stack()
    x = torch.randn(1, 1 + TA + TV, DIM)
    ids = _ids()
    y, _ = model(x, layer_masks(ids, None, (pattern,) * 2))
    # append two padded audio steps and three padded video steps with garbage values
    pad_a, pad_v = torch.randn(1, 2, DIM) * 50, torch.randn(1, 3, DIM) * 50
    xp = torch.cat([x[:, : 1 + TA], pad_a, x[:, 1 + TA :], pad_v], dim=1)
    ids_p = torch.tensor([GLOBAL] + [AUDIO] * (TA + 2) + [VIDEO] * (TV + 3))
    valid = torch.tensor([[True] * (1 + TA) + [False] * 2 + [True] * TV + [False] * 3])
    yp, _ = model(xp, layer_masks(ids_p, valid, (pattern,) * 2))
    keep = valid[0]
    torch.testing.assert_close(yp[0, keep], y[0], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(yp).all()


def test_stack_returns_maps_and_checks_mask_count() -> None:
    model = _stack(depth=3)
    x = torch.randn(2, 1 + TA + TV, DIM)
    y, maps = model(x, BlockMask.from_ids(_ids(), None, "cross"), return_attention=True)
    assert y.shape == x.shape and len(maps) == 3
    with pytest.raises(ValueError, match="masks for 3 layers"):
        model(x, [None, None])


def test_gradients_flow_through_fused_path() -> None:
    model = _stack().train()
    x = torch.randn(2, 1 + TA + TV, DIM, requires_grad=True)
    y, _ = model(x, layer_masks(_ids(), None, ("cross", "cross")))
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("pattern", ["full", "self", "cross"])
def test_packed_tokens_give_the_same_valid_outputs(pattern: str) -> None:
    model = _stack()
    x = torch.randn(3, 1 + TA + TV, DIM, requires_grad=True)
    valid = torch.ones(3, 1 + TA + TV, dtype=torch.bool)
    valid[0, 2 : 1 + TA] = False  # sample 0: one audio step
    valid[1, -3:] = False
    masks = layer_masks(_ids(), valid, (pattern,) * 2)
    dense, _ = model(x, masks)
    packed, _ = model(x, masks, token_valid=valid)
    torch.testing.assert_close(packed[valid], dense[valid], rtol=1e-5, atol=1e-5)
    assert (packed[~valid] == 0).all()
    g_dense = torch.autograd.grad(dense[valid].sum(), x)[0]
    g_packed = torch.autograd.grad(packed[valid].sum(), x)[0]
    torch.testing.assert_close(g_packed, g_dense, rtol=1e-4, atol=1e-5)


def _dense_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Softmax attention over all query-key scores with the dense ``[B, N, N]`` mask."""
    logits = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return logits.masked_fill(~mask[:, None], float("-inf")).softmax(-1) @ v


SEGMENT_CASES = {
    "cls_audio_video": ((GLOBAL, 1), (AUDIO, TA), (VIDEO, TV)),
    "no_class_token": ((AUDIO, TA), (VIDEO, TV)),
    "audio_only": ((GLOBAL, 1), (AUDIO, TA)),
    "video_only_no_class_token": ((VIDEO, TV),),
}


@pytest.mark.parametrize("pattern", ["cross", "self", "full"])
@pytest.mark.parametrize("case", sorted(SEGMENT_CASES))
def test_block_attention_equals_masked_dense_attention(pattern: str, case: str) -> None:
    """Every query row (padded ones and the class token included) and every gradient equal
    the dense masked computation, also for samples whose query segment has no valid key
    (sample 2: no valid video step, so its audio queries attend only to the class token, or
    to themselves without one) and for a single modality (rows with no admissible key)."""
    from lowshot.layers.attention import block_attention

    segments = SEGMENT_CASES[case]
    n = sum(length for _, length in segments)
    valid = torch.ones(4, n, dtype=torch.bool)
    starts = {m: sum(length for _, length in segments[:i]) for i, (m, _) in enumerate(segments)}
    if AUDIO in starts:
        valid[0, starts[AUDIO] + 2 : starts[AUDIO] + TA] = False
    if VIDEO in starts:
        valid[1, starts[VIDEO] + 3 : starts[VIDEO] + TV] = False
        valid[2, starts[VIDEO] : starts[VIDEO] + TV] = False
    torch.manual_seed(0)
    q, k, v = (torch.randn(4, 3, n, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    for key_padding in (valid, None):
        mask = BlockMask(segments, key_padding, pattern)
        dense = mask.dense()
        assert dense.any(-1).all()  # the definition never leaves a row empty
        out = block_attention(q, k, v, mask)
        ref = _dense_reference(q, k, v, dense)
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        g = torch.randn_like(out)
        grads = torch.autograd.grad(out, (q, k, v), g, allow_unused=True)
        ref_grads = torch.autograd.grad(ref, (q, k, v), g)
        for a, b, x in zip(grads, ref_grads, (q, k, v)):  # unused (None) = zero gradient
            torch.testing.assert_close(
                torch.zeros_like(x) if a is None else a, b, rtol=1e-10, atol=1e-10
            )


def test_cross_blocks_compute_only_the_allowed_scores() -> None:
    mask = BlockMask(((GLOBAL, 1), (AUDIO, TA), (VIDEO, TV)), None, "cross")
    blocks = [(b.queries, b.keys) for b in mask.blocks]  # segment indices: 0 cls, 1 audio, 2 video
    assert blocks == [((0,), (0, 1, 2)), ((1,), (0, 2)), ((2,), (0, 1))]
    assert [(b.queries, b.keys) for b in BlockMask(mask.segments, None, "full").blocks] == [
        ((0, 1, 2), (0, 1, 2))
    ]
    n = 1 + TA + TV
    with pytest.raises(ValueError, match="one \\[N\\] modality-id vector"):
        BlockMask.from_ids(torch.zeros(2, n, dtype=torch.long), None, "cross")


@pytest.mark.parametrize("block_sparse", [False, True])
@pytest.mark.parametrize("mask", ["block", "dense", "none"])
def test_bf16_autocast_attention_kernel_runs_in_fp32_on_cpu(
    block_sparse: bool, mask: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CPU flash attention's bf16 backward is several times slower than its fp32 one at
    # TCaF's shapes (docs/benchmarks.md): under bf16 autocast every fused call gets fp32
    # q/k/v, the module's output and input gradients keep autocast's dtypes
    import lowshot.layers.attention as attention

    if block_sparse:  # the block path from 10 tokens on
        monkeypatch.setattr(attention, "BLOCK_SPARSE_MIN_TOKENS", 1 + TA + TV)
    kernel, seen = attention.F.scaled_dot_product_attention, []

    def spy(q, k, v, attn_mask=None):  # type: ignore[no-untyped-def]
        seen.append((q.dtype, k.dtype, v.dtype))
        return kernel(q, k, v, attn_mask=attn_mask)

    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", spy)
    torch.manual_seed(0)
    attn = MultiHeadAttention(DIM, heads=3, dim_head=8).eval()
    x = torch.randn(2, 1 + TA + TV, DIM, requires_grad=True)
    valid = torch.ones(2, 1 + TA + TV, dtype=torch.bool)
    valid[0, -2:] = False
    block = BlockMask.from_ids(_ids(), valid, "cross")
    m = {"block": block, "dense": block.dense(), "none": None}[mask]
    ref, _ = attn(x, m)
    assert {d for s in seen for d in s} == {torch.float32}
    seen.clear()
    with torch.autocast("cpu", torch.bfloat16):
        out, _ = attn(x, m)
    assert seen and {d for s in seen for d in s} == {torch.float32}
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=5e-2)
    out.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
