"""Video-adverb data: split CSVs (``splits``), clip features (``features``), text files
(``text``: S3D text weights and word dictionary, text-embedding caches) and the synthetic
generator that writes the released layout (``synth``). Readers and writers only: the text
encoders that turn texts into embeddings live in :mod:`lowshot.extract.text`."""
