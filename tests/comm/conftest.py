"""Comm fixtures: a random-init PaliGemma mask decoder saved like big_vision's vae-oid.npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def mask_decoder_npz(tmp_path_factory) -> Path:
    """Random weights of the real decoder architecture under the checkpoint's key names
    (``decoder.N...`` PyTorch state dict + ``_vq_vae._embedding`` codebook ``[128, 512]``; an
    encoder key that loading must ignore)."""
    from lowshot.comm.segmentation import DECODER_FILE, MaskDecoder

    torch.manual_seed(0)
    dec = MaskDecoder(512)
    dec.codebook.normal_()
    with torch.no_grad():  # centre the logits so that random codes give partial masks
        dec.decoder[12].bias -= dec(torch.arange(128).view(8, 16)).median()
    arrays = {k: v.numpy() for k, v in dec.state_dict().items() if k != "codebook"}
    arrays["_vq_vae._embedding"] = dec.codebook.numpy()
    arrays["encoder.0.weight"] = np.zeros((128, 1, 3, 3), np.float32)
    path = tmp_path_factory.mktemp("vae") / DECODER_FILE
    np.savez(path, **arrays)
    return path
