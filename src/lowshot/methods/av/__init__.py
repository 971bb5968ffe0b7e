"""Audio-visual (G)ZSL / GFSL methods; importing this package registers them in METHODS."""

from lowshot.methods.av import (  # noqa: F401
    apn,
    attention_fusion,
    avca,
    avdiff,
    avgzslnet,
    cjme,
    clipclap,
    compat,
    fvaegan_d2,
    hip,
    hyper_multiple,
    mbt,
    perceiver,
    protogan,
    sldg,
    tcaf,
    tsl,
    zorro,
)
