"""Readers, writers and in-memory forms of the released data, one subpackage per family:
:mod:`lowshot.data.av` (audio-visual GZSL) and :mod:`lowshot.data.adverbs` (video adverbs)."""
