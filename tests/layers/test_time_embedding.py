"""Fourier time embedding: seconds in, the same code under bf16 autocast as in fp32."""

from __future__ import annotations

import math

import pytest
import torch

from lowshot.layers.embeddings import FourierTimeEmbedding

pytestmark = pytest.mark.usefixtures("one_thread")


def test_time_embedding_under_bf16_autocast_matches_fp32() -> None:
    # sin/cos of 2 pi f t with |f t| in the thousands: an argument rounded to bf16 (spacing
    # 8-64 there, e.g. the published [t, t] @ B product under autocast) gives unrelated
    # codes; only the output Linear may run in bf16
    torch.manual_seed(0)
    emb = FourierTimeEmbedding(64, scale=10.0)
    times = torch.linspace(0.0, 60.0, 241).expand(2, -1)  # [B, T] seconds, 0.25 s apart
    assert (2 * math.pi * times.max() * emb.freqs.abs().max()).item() > 1e3
    with torch.no_grad():
        ref = emb(times)
        with torch.autocast("cpu", torch.bfloat16):
            low = emb(times)
    assert low.dtype == torch.bfloat16 and ref.shape == (2, 241, 64)
    # bf16 rounding of the projection only: about 0.4 % of the code's scale
    assert (low.float() - ref).abs().max().item() < 0.02 * ref.abs().max().item()
