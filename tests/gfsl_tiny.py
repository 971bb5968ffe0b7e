"""Tiny AV-Diff sizes shared by the GFSL tests (with the tiny benchmark of av_tiny.py)."""

from __future__ import annotations

#: an AV-Diff config small enough for CPU tests (model.* keys of AVDiffConfig)
TINY_AVDIFF = dict(dim=32, encoder_hidden=32, decoder_hidden=32, dim_out=16, pos_dim=8, depth=2, attention_switch=1,
                   heads=2, dim_head=8, mlp_dim=32, diffusion_steps=20, generator_hidden=32)  # fmt: skip
