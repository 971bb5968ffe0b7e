"""lowshot: multimodal data-efficient learning.

Audio-visual generalised zero-shot video classification (AVCA, TCaF, ClipClap-GZSL; with
their baselines), audio-visual generalised few-shot classification (AV-Diff and its
baselines), video-adverb retrieval (ReGaDa and its baselines), on-the-fly adaptation of
communicating MLLMs, and feature extraction / prediction from raw media, behind one
registry, one config system and honest protocols.
"""

__version__ = "0.1.0"
