"""Audio-visual (G)ZSL methods; importing this package registers them in METHODS."""

from lowshot.methods.av import apn, avca, clipclap, compat, fvaegan_d2, tcaf  # noqa: F401
