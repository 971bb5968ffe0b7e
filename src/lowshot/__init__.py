"""lowshot: multimodal data-efficient learning.

Audio-visual generalised zero-/few-shot video classification (AVCA, TCaF, AV-Diff,
ClipClap-GZSL), video-adverb retrieval (ReGaDa) and on-the-fly adaptation of
communicating MLLMs, behind one registry, one config system and honest protocols.
"""

__version__ = "0.1.0"
