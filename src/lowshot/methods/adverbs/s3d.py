"""S3D pre-trained: training-free similarity of joint-space video and phrase embeddings.

Citation: A. Miech, J.-B. Alayrac, L. Smaira, I. Laptev, J. Sivic, A. Zisserman,
"End-to-End Learning of Visual Representations from Uncurated Instructional Videos", CVPR
2020 (MIL-NCE S3D-HowTo100M), used as a baseline in the AIR paper (Moltisanti et al., CVPR
2023) and thesis chapter 6.

Differences from the published code: the baseline's configuration is unreleased (reference
§8.3): pooling, similarity and phrase order are options to be settled against published
numbers. :mod:`lowshot.methods.adverbs.clip` is the same method with another encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.layers.masks import key_padding
from lowshot.methods.adverbs.base import AdverbBatch, AdverbMethod, VocabText
from lowshot.protocols.adverbs import AdverbData


@dataclass(frozen=True)
class ZeroShotConfig:
    """Training-free similarity of pooled video embeddings and phrase embeddings.

    ``features``: ``joint`` (the file's ``video_embedding_joint_space``, i.e. S3D's joint
    space, or per-second image embeddings of another encoder stored under that key) or
    ``video``. The S3D pre-trained configuration is unreleased (reference §8.3): pooling,
    similarity and phrase order are options to be settled against published numbers.
    """

    features: Literal["joint", "video"] = "joint"
    pooling: Literal["mean", "max"] = "mean"
    similarity: Literal["cosine", "dot"] = "cosine"
    phrase: Literal["adverb action", "action adverb"] = "adverb action"


@METHODS.register("adverbs.s3d_pretrained")
class ZeroShotMethod(AdverbMethod):
    """S3D pre-trained (AIR paper) / CLIP (thesis App. E.2, E.4) zero-shot baselines."""

    Config = ZeroShotConfig

    trainable = False

    def __init__(
        self, cfg: ZeroShotConfig, data: AdverbData, text: VocabText, feature_dim: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        phrases = text.pair_emb(cfg.phrase)
        if cfg.similarity == "cosine":
            phrases = F.normalize(phrases, dim=-1)
        self.register_buffer(
            "phrases", phrases.view(data.vocab.n_adverbs, data.vocab.n_actions, -1)
        )

    def action_scores(self, batch: AdverbBatch, actions: torch.Tensor, cache: Any) -> torch.Tensor:
        """Scores ``[B, |A|]``: similarity of the pooled ``[B, T, d]`` clip features with the phrase
        embeddings of every adverb paired with ``actions [B]`` (``cache`` unused).

        Raises:
            ConfigError: the chosen features are absent or their dim differs from the text's.
        """
        x = batch.joint if self.cfg.features == "joint" else batch.video
        if x is None:
            raise ConfigError("zero-shot baseline: the feature file has no joint-space embeddings")
        if x.shape[-1] != self.phrases.shape[-1]:
            raise ConfigError(
                f"zero-shot baseline: video embeddings are {x.shape[-1]}-d but text embeddings "
                f"{self.phrases.shape[-1]}-d; use a text encoder of the same joint space"
            )
        valid = key_padding(batch.lengths, x.shape[1])[..., None]
        if self.cfg.pooling == "mean":
            v = (x * valid).sum(1) / batch.lengths[:, None].clamp_min(1)
        else:
            v = x.masked_fill(~valid, float("-inf")).max(1).values
        if self.cfg.similarity == "cosine":
            v = F.normalize(v, dim=-1)
        return torch.einsum("bd,abd->ba", v, self.phrases[:, actions])
