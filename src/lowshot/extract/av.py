"""Import the audio-visual encoders so that they register in ENCODERS (``av.*``, ``text.clip/clap``)."""

from lowshot.extract import c3d, effnet, hf, text, vggish  # noqa: F401

__all__ = ["c3d", "effnet", "hf", "text", "vggish"]
