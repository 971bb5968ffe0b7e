"""AC_CLS: adverb classification by verb-query attention (and the shared AC method).

Citation: D. Moltisanti, F. Keller, H. Bilen, L. Sevilla-Lara, "Learning Action Changes by
Measuring Verb-Adverb Textual Relationships", CVPR 2023 (dmoltisanti/air-cvpr23 @
4b09522, read, never copied).

Differences from the published code: padding is masked from true lengths in training and
evaluation; the published training treats a step whose feature channel 0 is zero as
padding (``legacy_zero_value_padding_mask``) and the published evaluation is unmasked, so
a clip's scores depend on the longest clip of its 512-row test batch
(``legacy_unmasked_eval`` with ``train.eval_batch_size: 512``, the default). Indices come
from names, never from CSV label columns. Device-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.methods.adverbs.base import AdverbBatch, AdverbMethod, VocabText
from lowshot.models.adverbs.baselines import ACModel, ACNetConfig
from lowshot.protocols.adverbs import AdverbData


@dataclass(frozen=True)
class ACConfig(ACNetConfig):
    """AC_CLS / AC_REG: the architecture (:class:`~lowshot.models.adverbs.baselines.ACNetConfig`,
    air-cvpr23 defaults: 4 heads, d_k 512, rho 512-512-512, dropout 0.1) and the loss.

    ``dropout`` applies to ``rho`` and to the attention weights (one value, as published).
    ``fixed_delta`` sets delta = 1 (``--fixed_d``). Without antonyms (``data.use_antonyms:
    false``, ``--no_antonyms``) the -delta target is dropped and delta compares the phrase
    with the bare verb: ||S("v a") - S("v")|| * |cos(S(v), S(a))|.
    ``legacy_zero_value_padding_mask`` (channel-0 padding test in training) and
    ``legacy_unmasked_eval`` (no mask at evaluation; results then depend on
    ``train.eval_batch_size``, published 512) restore the published padding handling.
    """

    fixed_delta: bool = False


class ACMethod(AdverbMethod):
    """The AC model (verb-query attention + ``rho``) and its scores (``rho`` outputs);
    subclasses give the training loss (:class:`ACClsMethod`, ``ac_reg.ACRegMethod``)."""

    Config = ACConfig

    def __init__(self, cfg: ACConfig, data: AdverbData, text: VocabText, feature_dim: int) -> None:
        super().__init__()
        self.model = ACModel(text.action_emb(), data.vocab.n_adverbs, feature_dim, cfg)
        ant = data.antonyms
        self.register_buffer("antonyms", None if ant is None else torch.as_tensor(ant))

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        """Scores ``[B, |A|]``: the ``rho`` outputs of the verb-query attention over ``batch.video`` for ``actions [B]`` (``cache`` unused)."""
        return self.model(batch.video, batch.lengths, actions)


@METHODS.register("adverbs.ac_cls")
class ACClsMethod(ACMethod):
    """AC_CLS: cross-entropy over adverbs of the ``rho`` outputs."""

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        """Cross-entropy of the ``[B, |A|]`` ``rho`` outputs (GT action query) against the GT adverbs.

        Returns:
            ``{"loss": scalar tensor, "loss_terms": {name: float}}``, term ``ce``.
        """
        out = self.model(batch.video, batch.lengths, batch.actions)  # [B, A]
        loss = F.cross_entropy(out, batch.adverbs)
        return {"loss": loss, "loss_terms": {"ce": float(loss.detach())}}
