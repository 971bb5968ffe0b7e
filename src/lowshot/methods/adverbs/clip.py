"""CLIP: zero-shot video-adverb retrieval with any image-text encoder (thesis App. E.2, E.4).

Citation: A. Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021.

Differences from the published code: none released; the method is the S3D zero-shot
baseline (:mod:`lowshot.methods.adverbs.s3d`) over the per-second image embeddings of an
image-text encoder stored as the joint-space features, with text embeddings from a
registered encoder or a text cache.
"""

from __future__ import annotations

from lowshot._registry import METHODS
from lowshot.methods.adverbs.s3d import ZeroShotMethod


@METHODS.register("adverbs.clip")
class CLIPMethod(ZeroShotMethod):
    """CLIP (thesis App. E.2, E.4): :class:`ZeroShotMethod` over image-text embeddings."""
