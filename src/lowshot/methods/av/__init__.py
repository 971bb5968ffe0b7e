"""Audio-visual (G)ZSL methods; importing this package registers them in METHODS."""

from lowshot.methods.av import avca, avdiff, clipclap, tcaf  # noqa: F401
