"""Perceiver adapted to audio-visual (G)ZSL (the thesis' baseline of Table 3.1).

Reference: A. Jaegle, F. Gimeno, A. Brock, A. Zisserman, O. Vinyals, J. Carreira, "Perceiver:
General Perception with Iterative Attention", ICML 2021; adapted to (G)ZSL in thesis
app. B.1.2 (O.-B. Mercea, *Multimodal Data Efficient Learning*, 2024; Mercea et al., ECCV 2022).

Model: TCaF's tokens (A_enc / V_enc, modality and Fourier time embeddings, position encoder
block) are read by 64 latent tokens of width ``d_dim``: per layer one cross-attention block and
one latent self-attention layer (TCaF's internal sizes, dense blocks ending in dropout, no
weight sharing, TCaF's number of layers). Latent 0 is ``c_o``; TCaF's O_proj, D_o, text heads,
losses, learning rate and scores (Eq. 3.14).

Differences from the published code: none exists (reference §6.9, the TCaF repository has the
flag only): re-implemented from the thesis text; no upstream parity reference. Inputs, their
normalisation, the collate and the losses are TCaF's (:class:`~lowshot.methods.av.tcaf.TCaF`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.methods.base import GZSLMethod, InputSpec
from lowshot.models.av.perceiver import PerceiverNet


@dataclass(frozen=True)
class PerceiverConfig(TCaFConfig):
    """TCaF's hyperparameters plus the latent array.

    Attributes:
        n_latents: number of latent tokens (64, thesis app. B.1.2).
    """

    n_latents: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_latents < 1:
            raise ConfigError(f"perceiver: model.n_latents must be positive, got {self.n_latents}")


@METHODS.register("perceiver")
class Perceiver(TCaF):
    """Perceiver (TCaF's method with the latent-array network)."""

    Config = PerceiverConfig

    def __init__(self, config: PerceiverConfig, spec: InputSpec) -> None:
        GZSLMethod.__init__(self, config, spec)
        self.net = PerceiverNet(
            spec.audio_dim, spec.video_dim, spec.text_dim, config, config.n_latents
        )
