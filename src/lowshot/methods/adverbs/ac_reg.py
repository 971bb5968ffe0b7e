"""AC_REG: regression of adverb outputs to +delta / -delta targets.

Citation: D. Moltisanti, F. Keller, H. Bilen, L. Sevilla-Lara, "Learning Action Changes by
Measuring Verb-Adverb Textual Relationships", CVPR 2023 (dmoltisanti/air-cvpr23 @
4b09522, read, never copied).

Differences from the published code: those of AC_CLS (:mod:`lowshot.methods.adverbs.ac_cls`:
padding masked from true lengths, legacy options for the published padding handling).
Without antonyms the published delta ||S("v a") - S("v")|| * |cos(S(v), S(a))| is used
(``--no_antonyms``), with the +delta target only; ``fixed_delta`` is ``--fixed_d``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.methods.adverbs.ac_cls import ACConfig, ACMethod
from lowshot.methods.adverbs.base import AdverbBatch, VocabText
from lowshot.protocols.adverbs import AdverbData


def ac_delta(text: VocabText, antonyms: np.ndarray | None) -> torch.Tensor:
    """``[A, V]`` AC_REG regression targets (verb-first phrases, as published).

    delta(v, a) = ||S("v a") - S("v ant(a)")|| * |cos(S(v), S(a))|; without antonyms
    (``antonyms`` None) the negative phrase is the bare verb: ||S("v a") - S("v")|| * |cos|.
    """
    a_n, v_n = len(text.adverbs), len(text.actions)
    phrases = text.pair_emb("action adverb").view(a_n, v_n, -1)
    if antonyms is None:
        negative = text.action_emb()[None].expand_as(phrases)
    else:
        negative = phrases[torch.as_tensor(antonyms)]
    diff = (phrases - negative).norm(dim=-1)  # [A, V]
    cos = F.cosine_similarity(text.adverb_emb()[:, None], text.action_emb()[None], dim=-1).abs()
    return diff * cos


@METHODS.register("adverbs.ac_reg")
class ACRegMethod(ACMethod):
    """AC_REG: MSE of the ``rho`` outputs to +delta (GT adverb) and -delta (its antonym)."""

    def __init__(self, cfg: ACConfig, data: AdverbData, text: VocabText, feature_dim: int) -> None:
        super().__init__(cfg, data, text, feature_dim)
        if cfg.fixed_delta:
            delta = torch.ones(data.vocab.n_adverbs, data.vocab.n_actions)
        else:
            delta = ac_delta(text, data.antonyms)
        self.register_buffer("delta", delta)

    def training_loss(self, batch: AdverbBatch, gen: torch.Generator) -> dict[str, Any]:
        """MSE of the ``[B, |A|]`` ``rho`` outputs to a target that is +delta at the GT adverb,
        -delta at its antonym (when antonyms are used) and 0 elsewhere.

        Returns:
            ``{"loss": scalar tensor, "loss_terms": {name: float}}``, term ``mse``.
        """
        out = self.model(batch.video, batch.lengths, batch.actions)  # [B, A]
        rows = torch.arange(len(batch), device=out.device)
        d = self.delta[batch.adverbs, batch.actions]
        target = torch.zeros_like(out)
        target[rows, batch.adverbs] = d
        if self.antonyms is not None:
            target[rows, self.antonyms[batch.adverbs]] = -d
        loss = F.mse_loss(out, target)
        return {"loss": loss, "loss_terms": {"mse": float(loss.detach())}}
