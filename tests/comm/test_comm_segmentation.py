"""PaliGemma segmentation: <loc>/<seg> parsing, the VQ-VAE mask decoder, placement into the box."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowshot.comm.segmentation import (
    DECODER_FILE,
    MaskDecoder,
    decode_segmentations,
    parse_segmentation,
    place_mask,
    segmentation_tokens,
)
from lowshot.errors import ConfigError

CODES = np.arange(16) * 7 % 128


def test_decoder_loads_the_checkpoint_layout_and_upsamples_4x4_codes_to_64x64(mask_decoder_npz):
    dec = MaskDecoder.from_npz(mask_decoder_npz)
    raw = np.load(mask_decoder_npz)
    assert torch.equal(dec.codebook, torch.from_numpy(raw["_vq_vae._embedding"]))
    assert torch.equal(dec.decoder[12].weight, torch.from_numpy(raw["decoder.12.weight"]))
    assert [type(m).__name__ for m in dec.decoder].count("ConvTranspose2d") == 4
    out = dec(torch.as_tensor(np.stack([CODES, CODES[::-1]])))
    assert out.shape == (2, 64, 64) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # the codes matter
    # a directory holding the file works too
    again = MaskDecoder.from_npz(mask_decoder_npz.parent)(torch.as_tensor(CODES[None]))
    assert torch.allclose(again, out[:1], atol=1e-6)


def test_missing_or_foreign_decoder_weights_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match=DECODER_FILE):
        MaskDecoder.from_npz(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        MaskDecoder.from_npz(tmp_path / "nothing.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ConfigError, match="_vq_vae._embedding"):
        MaskDecoder.from_npz(tmp_path / "other.npz")
    np.savez(tmp_path / "half.npz", **{"_vq_vae._embedding": np.zeros((128, 8), np.float32)})
    with pytest.raises(ConfigError, match="missing"):
        MaskDecoder.from_npz(tmp_path / "half.npz")


def test_parse_segmentation_follows_the_evaluator_validity_rules():
    text = segmentation_tokens((8.0, 16.0, 40.0, 48.0), CODES, 64, 64) + " red cube"
    box, codes = parse_segmentation(text)
    assert np.array_equal(codes, CODES)
    assert np.allclose(box * 64, [16, 8, 48, 40], atol=0.1)  # y0, x0, y1, x1
    assert parse_segmentation(text.replace("><", "> <")) is not None  # word tokenizers add spaces
    locs = text[: 4 * 9]
    assert parse_segmentation(locs) is None  # no <seg> tokens
    assert parse_segmentation(locs + "<seg001>" * 15) is None  # 15 of 16
    assert parse_segmentation(locs + "<seg128>" + "<seg001>" * 15) is None  # codebook has 128
    assert parse_segmentation("<loc0100><loc0100><loc0050><loc0200>" + "<seg001>" * 16) is None  # y1 <= y0
    assert parse_segmentation("red " + text) is None  # tokens must lead


def test_place_mask_resizes_into_the_box_and_thresholds_at_zero():
    box = np.array([16, 8, 48, 40]) / 64  # y0, x0, y1, x1
    full = place_mask(np.ones((64, 64)), box, 64, 64)
    expected = np.zeros((64, 64), bool)
    expected[16:48, 8:40] = True
    assert np.array_equal(full, expected)
    assert not place_mask(-np.ones((64, 64)), box, 64, 64).any()
    half = np.ones((64, 64))
    half[:, 32:] = -1  # left half of the box only
    m = place_mask(half, box, 64, 64)
    assert m[16:48, 8:22].all() and not m[16:48, 26:40].any() and not m[:, :8].any()


def test_decode_segmentations_gives_empty_masks_for_invalid_answers(mask_decoder_npz):
    dec = MaskDecoder.from_npz(mask_decoder_npz)
    good = segmentation_tokens((8.0, 16.0, 40.0, 48.0), CODES, 64, 96)
    masks = decode_segmentations([good, "a red cube", "<loc0001>"], [(64, 96)] * 3, dec)
    assert [m.shape for m in masks] == [(96, 64)] * 3
    assert not masks[1].any() and not masks[2].any()
    box, _ = parse_segmentation(good)
    ref = place_mask(dec(torch.as_tensor(CODES[None]))[0].numpy(), box, 64, 96)
    assert np.array_equal(masks[0], ref)
    ys, xs = np.nonzero(masks[0])
    assert ys.size and ys.min() >= 15 and ys.max() < 48 and xs.min() >= 7 and xs.max() < 40  # in the box
