"""Audio-visual (G)ZSL data: dataset facts (``datasets``), the class-split tree (``splits``),
class-label embeddings (``embeddings``), per-format readers (``h5`` averaged features,
``pickles``, the converted ``safe_format``), the feature-folder walk (``tree``, ``source``),
the in-memory :class:`~lowshot.data.av.featureset.FeatureSet` and the assembled benchmark
(``gzsl``), mini-batches (``batch``), the temporal sequence-length policy (``sequences``),
``lowshot data inspect`` (``summary``) and the synthetic generator that writes the released
layouts (``synth``)."""
