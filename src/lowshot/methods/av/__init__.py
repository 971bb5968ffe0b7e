"""Audio-visual (G)ZSL / GFSL methods; importing this package registers them in METHODS."""

from lowshot.methods.av import avca, avdiff, clipclap, hip, mbt, protogan, sldg, tcaf, tsl, zorro  # noqa: F401
