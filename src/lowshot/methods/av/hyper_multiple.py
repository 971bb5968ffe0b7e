"""Hyper-multiple: AVCA with hyperbolic audio-visual alignment at multiple adaptive curvatures.

Reference: J. Hong, Z. Hayder, J. Han, P. Fang, M. Harandi, L. Petersson, "Hyperbolic
Audio-visual Zero-shot Learning", ICCV 2023 (the "Hyper-multiple" variant); the baseline of
thesis Table 5.1 (O.-B. Mercea, *Multimodal Data Efficient Learning*, 2024, §5.4.1), trained
there "using the training parameters from [94]".

Implemented from the paper: the AVCA model and loss (thesis ch. 2), plus the hyperbolic
alignment module: the encoder outputs ``phi_v`` / ``phi_a`` are projected onto the Poincaré
ball by the exponential map at the origin with ``K`` per-sample curvatures
``c = c_max * sigmoid(Linear([phi_v ; phi_a]))``, and the loss adds
``lambda * mean_k MSE(S(exp_0^{c_k}(phi_v)), S(exp_0^{c_k}(phi_a)))`` with ``S`` the intra-modal
cosine-similarity matrix of the batch. Hyperparameters (``c_max`` 0.01, ``K`` 2, ``lambda`` 1e-3
and AVCA's training settings) are those of the authors' run scripts (JHome1/Hyper-AVZSL).

Note: the exponential map (and the published ``project`` + ``logmap0``) only rescales each
vector along its direction, so the cosine similarities, hence the loss, do not depend on the
curvature; the curvature head receives no gradient and the module acts as an intra-modal
similarity-structure alignment between audio and video (the same holds for the published
code).

Differences from the published code (JHome1/Hyper-AVZSL): everything AVCA's differences list
(:mod:`lowshot.methods.av.avca`: in-batch negatives, no extra BatchNorm passes, trained
position embedding, …; its legacy switches apply here too). With in-batch negatives there is
one forward, hence one alignment term; the published code adds a second one on its separately
forwarded negative batch (``model.legacy_negatives=true`` gives both). The curvature head is
optimised with the rest (as published for Hyper-multiple). The published code projects with
``project`` + ``logmap0`` instead of the exponential map (same loss value, see the note).
``model.text_input_layer`` is the Table 5.1 variant (thesis Eq. 5.9); no published code for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lowshot._registry import METHODS
from lowshot.data.av.batch import Batch
from lowshot.errors import ConfigError
from lowshot.methods.av.avca import AVCA, AVCAConfig
from lowshot.methods.base import GZSLMethod, InputSpec, LossResult
from lowshot.models.av.hyper_multiple import HyperMultipleNet


@dataclass(frozen=True)
class HyperMultipleConfig(AVCAConfig):
    """AVCA's hyperparameters plus the hyperbolic alignment module.

    Attributes:
        n_curvatures: ``K`` adaptive curvatures (2).
        max_curvature: ``c_max`` (0.01).
        align_weight: ``lambda`` of the alignment loss (1e-3).
    """

    n_curvatures: int = 2
    max_curvature: float = 0.01
    align_weight: float = 1.0e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inputs != "both" or self.fusion != "cross_attention":
            raise ConfigError(
                "hyper_multiple: needs both inputs and cross-attention (the alignment reads phi_a and phi_v)"
            )
        if self.n_curvatures < 1 or self.max_curvature <= 0 or self.align_weight < 0:
            raise ConfigError(
                "hyper_multiple: model.n_curvatures >= 1, model.max_curvature > 0 and model.align_weight >= 0 "
                f"are required, got {self.n_curvatures}, {self.max_curvature}, {self.align_weight}"
            )


@METHODS.register("hyper_multiple")
class HyperMultiple(AVCA):
    """AVCA + hyperbolic alignment at ``K`` adaptive curvatures; scores as AVCA (theta_v)."""

    Config = HyperMultipleConfig

    def __init__(self, config: HyperMultipleConfig, spec: InputSpec) -> None:
        GZSLMethod.__init__(self, config, spec)
        c = config
        self.net = HyperMultipleNet(
            spec.audio_dim,
            spec.video_dim,
            spec.text_dim,
            c,
            n_curvatures=c.n_curvatures,
            max_curvature=c.max_curvature,
            branches=c.branches,
            train_position=not c.legacy_fixed_position,
        )
        self.eval_output = c.resolved_eval_output()

    def training_loss(self, batch: Batch, class_embeddings: torch.Tensor) -> LossResult:
        """AVCA's loss (Eq. 2.4) + ``align_weight`` x the alignment loss of each training forward.

        Args:
            batch / class_embeddings: as :meth:`AVCA.training_loss`.

        Returns:
            AVCA's ``loss`` plus the weighted ``align`` term, and its terms with ``align``.
        """
        self.net.align_terms.clear()
        out = super().training_loss(batch, class_embeddings)
        align = (
            torch.stack(self.net.align_terms).sum()
            if self.net.align_terms
            else out["loss"].new_zeros(())
        )
        self.net.align_terms.clear()
        terms = {**out["loss_terms"], "align": align}
        return {"loss": out["loss"] + self.config.align_weight * align, "loss_terms": terms}
