"""Video-adverb retrieval architectures: ReGaDa (``regada``) and baselines (``baselines``)."""
