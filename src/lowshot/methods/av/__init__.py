"""Audio-visual (G)ZSL methods; importing this package registers them in METHODS."""

from lowshot.methods.av import (  # noqa: F401
    attention_fusion,
    avca,
    avgzslnet,
    cjme,
    clipclap,
    hyper_multiple,
    perceiver,
    tcaf,
)
