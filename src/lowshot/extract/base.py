"""What an audio-visual encoder is (:class:`AVEncoder`) and how ported encoders read local weights.

An AV encoder is registered in :data:`lowshot._registry.ENCODERS` under ``av.<name>``, decodes
its modality at ``rate`` (frames per second or samples per second), and maps the decoded
stream to ``[T, dim]`` float32 features, one row per ``step`` seconds (``step`` None: one row
per video). Weights of the published encoders never come from a hub: they are read from an
explicit local path, and a missing file or a checkpoint of another architecture is a
:class:`~lowshot.errors.DataError` naming the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from lowshot.errors import DataError


class AVEncoder:
    """Base of the audio / video encoders (see module docstring).

    Attributes:
        modality: ``audio`` or ``video``.
        kind: feature-family name recorded with the features (``vggish``, ``c3d``, ...).
        dim: output size D.
        step: seconds per output row, or None for one row per video.
        rate: decode rate (fps for video, Hz for audio).
        batch: segments per forward pass.
    """

    modality: str = "video"
    kind: str = "generic"
    dim: int = 0
    step: float | None = None
    rate: float = 25.0
    batch: int = 16

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """Decoded stream (``[T, H, W, 3]`` uint8 frames or ``[S]`` samples) -> ``[N, ...]`` segments."""
        raise NotImplementedError

    def forward(self, segments: np.ndarray) -> torch.Tensor:
        """``[n, ...]`` segments -> ``[n, dim]`` features."""
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, stream: np.ndarray) -> np.ndarray:
        """Decoded stream -> ``[N, dim]`` float32 features (N >= 1)."""
        seg = self.segment(stream)
        out = [self.forward(seg[i : i + self.batch]) for i in range(0, len(seg), self.batch)]
        return torch.cat(out).float().numpy()

    def describe(self) -> dict[str, object]:
        """Modality, kind, dim, step and rate (recorded next to extracted features)."""
        return {"modality": self.modality, "kind": self.kind, "dim": self.dim, "step": self.step, "rate": self.rate}


def read_state_dict(path: str | Path | None, what: str, expected: str) -> dict[str, torch.Tensor]:
    """Tensors (name -> weight of any shape) of a local ``.safetensors`` / ``.pth`` / ``.pt`` checkpoint.

    A ``.pth`` is read with ``torch.load(weights_only=True)`` (no code runs); a wrapping
    ``state_dict`` / ``model`` entry and ``module.`` prefixes are removed.

    Args:
        path: the file.
        what: encoder name for messages (``VGGish``).
        expected: what the file is (``vggish-10086976.pth from torchvggish``), for messages.

    Raises:
        DataError: no path, missing file, or unreadable file.
    """
    if path is None or not Path(path).is_file():
        raise DataError(f"{what} weights not found: expected {expected} at {path or '(no path given)'}; "
                        "no weights are downloaded, pass a local file")
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any reader error is a bad file
        raise DataError(f"{path}: not a readable {what} checkpoint ({type(err).__name__}: {err})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path}: not a {what} checkpoint (expected a dict of tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def require(state: dict[str, torch.Tensor], keys: list[str], path: str | Path, what: str) -> None:
    """Raise a DataError naming ``path`` when ``state`` (name -> tensor of any shape) lacks one of ``keys`` (wrong architecture)."""
    missing = [k for k in keys if k not in state]
    if missing:
        have = ", ".join(sorted(state)[:4])
        raise DataError(f"{path}: not a {what} checkpoint (missing {', '.join(missing[:3])}; has {have}, ...)")


def load_checked(module: nn.Module, state: dict[str, torch.Tensor], path: str | Path, what: str,
                 ignore: tuple[str, ...] = ()) -> None:
    """``module.load_state_dict(state)`` with a one-line DataError on any key or shape mismatch."""
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or extra or shapes:
        raise DataError(
            f"{path}: not a {what} checkpoint (missing {missing[:3]}, unexpected {extra[:3]}, "
            f"shape mismatch {shapes[:3]})"
        )
    module.load_state_dict(state)


def save_checkpoint(module: nn.Module, path: str | Path) -> Path:
    """Write ``module``'s state dict as ``.safetensors`` (e.g. a tiny random-initialised port)."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return Path(path)
