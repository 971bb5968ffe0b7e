"""Attention Fusion adapted to audio-visual (G)ZSL (the thesis' baseline of Table 3.1).

Reference: H. M. Fayek, A. Kumar, "Large Scale Audiovisual Learning of Sounds with Weakly
Labeled Data", IJCAI 2020; adapted to (G)ZSL in thesis app. B.1.1 (O.-B. Mercea, *Multimodal
Data Efficient Learning*, 2024; Mercea et al., ECCV 2022).

Model: TCaF's A_enc / V_enc on the temporal features, averaged over time, fused by
``o_c = alpha * phi_a + (1 - alpha) * phi_v`` with ``alpha = sigmoid(f_attn([phi_a ; phi_v]))``,
then TCaF's O_proj, D_o and text heads; TCaF's losses, learning rate and scores (Eq. 3.14).

Differences from the published code: none exists (reference §6.9, the TCaF repository has the
flag only): re-implemented from the thesis text; no upstream parity reference. Inputs, their
normalisation, the collate and the losses are TCaF's (:class:`~lowshot.methods.av.tcaf.TCaF`),
with its defaults; TCaF's legacy switches that concern the transformer or the time embedding
have no effect here.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.methods.base import GZSLMethod, InputSpec
from lowshot.models.av.attention_fusion import AttentionFusionNet


@dataclass(frozen=True)
class AttentionFusionConfig(TCaFConfig):
    """TCaF's hyperparameters (sizes, dropouts, inputs, loss); the transformer ones are unused."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.modalities != "both" or self.inputs != "temporal":
            raise ConfigError(
                "attention_fusion: fuses both modalities of temporal inputs (modalities='both', inputs='temporal')"
            )


@METHODS.register("attention_fusion")
class AttentionFusion(TCaF):
    """Attention Fusion (TCaF's method with the gated-average network)."""

    Config = AttentionFusionConfig

    def __init__(self, config: AttentionFusionConfig, spec: InputSpec) -> None:
        GZSLMethod.__init__(self, config, spec)
        self.net = AttentionFusionNet(spec.audio_dim, spec.video_dim, spec.text_dim, config)
