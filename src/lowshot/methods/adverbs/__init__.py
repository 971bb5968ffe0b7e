"""Video-adverb retrieval methods, one module per method; importing this package registers
them in METHODS (the contract and the builder are in :mod:`lowshot.methods.adverbs.base`).

==========================  ===================================================================
``adverbs.regada``          ReGaDa (thesis Eqs. 6.1-6.7), Tables 6.3-6.5 ablations, E.3 no antonyms
``adverbs.tirg``            TIRG composition (action modified by adverb), classification loss
``adverbs.ac_cls``          AC_CLS (cross-entropy over adverbs)
``adverbs.ac_reg``          AC_REG (regression to +delta / -delta targets)
``adverbs.action_modifier`` Action Modifier (adverbs as linear maps, triplet losses)
``adverbs.pseudo_adverbs``  Pseudo-Adverbs: Action Modifier + pseudo-labelled unlabelled videos
``adverbs.s3d_pretrained``  zero-shot similarity of frozen joint-space video and text embeddings
``adverbs.clip``            same protocol with any pluggable image-text encoder's features
``adverbs.priors``          training-set pair counts (no features)
==========================  ===================================================================
"""

from lowshot.methods.adverbs import (  # noqa: F401
    ac_cls,
    ac_reg,
    action_modifier,
    clip,
    priors,
    pseudo_adverbs,
    regada,
    s3d,
    tirg,
)
