"""VGGish (Hershey et al., ICASSP 2017), own port, as used for the ``cls`` audio features
(thesis §3.4.1; reference ``av_benchmarks.md`` §2.6): 0.96 s log-mel examples -> 128-d.

Layer names follow the torchvggish state dict (``features.{0,3,6,8,11,13}``,
``embeddings.{0,2,4}``), so its published ``vggish-10086976.pth`` loads as it is; widths are
read from the checkpoint, so a tiny random-initialised checkpoint of the same architecture
loads too (tests). Post-processing (PCA + 8-bit quantisation, ``vggish_pca_params``) is applied
when a PCA file is given.

Differences from the published code: none in the network; the log-mel front end is our own
numpy implementation of the same recipe (:mod:`lowshot.extract.segments`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from lowshot._registry import ENCODERS
from lowshot.errors import DataError
from lowshot.extract import segments
from lowshot.extract.base import AVEncoder, load_checked, read_state_dict, require

CONV_KEYS = (0, 3, 6, 8, 11, 13)


class VGGish(nn.Module):
    """VGG-like audio network: ``[N, 1, 96, 64]`` log-mel -> ``[N, out]`` (ReLU'd embeddings).

    Args:
        widths: channels of the 4 conv groups (real: 64, 128, 256, 512).
        hidden: width of the two fc layers (real: 4096).
        out: embedding size (real: 128).
    """

    def __init__(self, widths: tuple[int, int, int, int] = (64, 128, 256, 512), hidden: int = 4096, out: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for v in (widths[0], "M", widths[1], "M", widths[2], widths[2], "M", widths[3], widths[3], "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(v)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(widths[3] * 4 * 6, hidden), nn.ReLU(True), nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, out), nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 1, 96, 64]`` -> ``[N, out]``; flattened channels-last as torchvggish."""
        x = self.features(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.embeddings(x)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], path: str | Path) -> VGGish:
        """The architecture whose widths match ``state`` (DataError for another architecture)."""
        require(state, [f"features.{i}.weight" for i in CONV_KEYS] + ["embeddings.0.weight", "embeddings.4.weight"], path, "VGGish")
        w = [int(state[f"features.{i}.weight"].shape[0]) for i in (0, 3, 6, 11)]
        model = cls(tuple(w), int(state["embeddings.0.weight"].shape[0]), int(state["embeddings.4.weight"].shape[0]))  # type: ignore[arg-type]
        load_checked(model, state, path, "VGGish")
        return model


def quantise(emb: np.ndarray, pca: dict[str, np.ndarray]) -> np.ndarray:
    """VGGish post-processing: PCA (``pca_eigen_vectors``, ``pca_means``), clip to [-2, 2], 8 bits."""
    x = (emb - pca["pca_means"].reshape(1, -1)) @ pca["pca_eigen_vectors"].T
    return np.round((np.clip(x, -2.0, 2.0) + 2.0) * (255.0 / 4.0)).astype(np.float32)


@ENCODERS.register("av.vggish")
class VGGishEncoder(AVEncoder):
    """VGGish audio features, one 128-d row per 0.96 s.

    Args:
        weights: ``vggish-10086976.pth`` (torchvggish) or a ``.safetensors`` with the same keys.
        pca: optional ``vggish_pca_params.npz`` (``pca_eigen_vectors``, ``pca_means``) -> quantised output.
        device: torch device.
    """

    modality, kind, step, rate = "audio", "vggish", 0.96, float(segments.VGGISH_RATE)

    def __init__(self, weights: str | Path | None = None, pca: str | Path | None = None, device: str = "cpu") -> None:
        state = read_state_dict(weights, "VGGish", "vggish-10086976.pth (torchvggish) or a converted .safetensors")
        self.model = VGGish.from_state(state, weights).to(device).eval()  # type: ignore[arg-type]
        self.device = device
        self.dim = int(state["embeddings.4.weight"].shape[0])
        self.pca = None
        if pca is not None:
            if not Path(pca).is_file():
                raise DataError(f"VGGish PCA parameters not found: expected vggish_pca_params.npz at {pca}")
            with np.load(pca) as z:
                self.pca = {k: z[k] for k in ("pca_eigen_vectors", "pca_means")}

    def segment(self, stream: np.ndarray) -> np.ndarray:
        """16 kHz samples -> ``[N, 96, 64]`` log-mel examples."""
        return segments.vggish_examples(stream)

    def forward(self, segs: np.ndarray) -> torch.Tensor:
        """``[n, 96, 64]`` -> ``[n, 128]`` (quantised 0..255 when a PCA file was given)."""
        emb = self.model(torch.from_numpy(segs).unsqueeze(1).to(self.device)).cpu()
        return emb if self.pca is None else torch.from_numpy(quantise(emb.numpy(), self.pca))
