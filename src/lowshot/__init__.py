"""lowshot: multimodal data-efficient learning.

Audio-visual generalised zero-shot video classification (AVCA, TCaF, ClipClap-GZSL; the
few-shot method AV-Diff is not implemented yet), video-adverb retrieval (ReGaDa) and
on-the-fly adaptation of communicating MLLMs, behind one registry, one config system and
honest protocols.
"""

__version__ = "0.1.0"
