"""PaliGemma segmentation outputs -> masks: 4 ``<loc>`` + 16 ``<seg>`` tokens, VQ-VAE decoder.

Citation: PaliGemma (Beyer et al., 2024) and big_vision's segmentation evaluator
(``big_vision/evaluators/proj/paligemma/transfers/segmentation.py``), after the mask VQ-VAE
of Ning et al., "All in Tokens" (arXiv:2301.02229). The output is ``<locY0><locX0><locY1>
<locX1>`` (bins 0..1023 of the image height/width, divided by 1023) followed by 16
``<segNNN>`` codebook indices (0..127); a 4 x 4 grid of codebook vectors is decoded into a
64 x 64 mask logit map in about [-1, 1], resized bilinearly into the box and thresholded at 0.
Invalid outputs (too few tokens, out-of-range values, empty box) give an empty mask.

What differs from the published code: the decoder is written in PyTorch (big_vision runs
it in Flax); its weights are read from big_vision's ``vae-oid.npz`` (a PyTorch state dict
saved with numpy, so the key names are the ``nn.Sequential`` indices below) from a local
path, never downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from lowshot.errors import ConfigError

#: file name of big_vision's decoder weights (``gs://big_vision/paligemma/vae-oid.npz``)
DECODER_FILE = "vae-oid.npz"
N_CODES = 128
N_SEG_TOKENS = 16
MASK_SIZE = 64

_LOC = re.compile(r"<loc(\d{4})>")
_SEG = re.compile(r"<seg(\d{3})>")


class _ResBlock(nn.Module):
    """conv3x3 - relu - conv3x3 - relu - conv1x1, plus the input (keys ``net.0/2/4``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class MaskDecoder(nn.Module):
    """big_vision's mask VQ-VAE decoder: ``[B, 16]`` codebook indices -> ``[B, 64, 64]`` logits.

    Architecture: codebook ``[128, D]``; 1x1 conv D->128, relu; 2 residual blocks; 4
    transposed convs (kernel 4, stride 2) 128->128->64->32->16, each with relu; 1x1 conv
    16->1. The 16 tokens form a 4 x 4 grid in row-major order.

    Args:
        embedding_dim: codebook vector size D (read from the weights by :meth:`from_npz`).
    """

    def __init__(self, embedding_dim: int = 512) -> None:
        super().__init__()
        self.register_buffer("codebook", torch.zeros(N_CODES, embedding_dim))
        layers: list[nn.Module] = [nn.Conv2d(embedding_dim, 128, 1), nn.ReLU(), _ResBlock(128), _ResBlock(128)]
        dims = [128, 128, 64, 32, 16]
        for i in range(4):
            layers += [nn.ConvTranspose2d(dims[i], dims[i + 1], 4, stride=2, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(16, 1, 1))
        self.decoder = nn.Sequential(*layers)

    @torch.no_grad()
    def forward(self, indices: Tensor) -> Tensor:
        """Args: indices ``[B, 16]`` in 0..127. Returns ``[B, 64, 64]`` mask logits."""
        if indices.shape[-1] != N_SEG_TOKENS:
            raise ValueError(f"expected {N_SEG_TOKENS} segmentation tokens, got {indices.shape[-1]}")
        q = self.codebook[indices.long()]  # [B, 16, D]
        q = q.view(-1, 4, 4, q.shape[-1]).permute(0, 3, 1, 2)
        return self.decoder(q)[:, 0]

    @classmethod
    def from_npz(cls, path: str | Path) -> MaskDecoder:
        """Load big_vision's ``vae-oid.npz`` (encoder weights in it are ignored).

        Raises:
            ConfigError: when the file is missing or lacks / misshapes decoder weights.
        """
        p = Path(path)
        if p.is_dir():
            p = p / DECODER_FILE
        if not p.is_file():
            raise ConfigError(
                f"PaliGemma mask decoder weights not found: {p} (expected big_vision's {DECODER_FILE}, "
                "the VQ-VAE that decodes <seg> tokens; lowshot never downloads it: copy it there once)")
        with np.load(p) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if "_vq_vae._embedding" not in arrays:
            raise ConfigError(f"{p}: no '_vq_vae._embedding' codebook (is this big_vision's {DECODER_FILE}?)")
        codebook = torch.from_numpy(np.asarray(arrays["_vq_vae._embedding"], dtype=np.float32))
        dec = cls(codebook.shape[1])
        state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()
                 if k.startswith("decoder.")}
        expected = dec.state_dict()
        missing = sorted(set(expected) - {"codebook"} - set(state))
        if missing or codebook.shape[0] != N_CODES:
            raise ConfigError(f"{p}: not a mask decoder checkpoint (missing {missing[:3]}, "
                              f"codebook {tuple(codebook.shape)}, expected ({N_CODES}, D))")
        bad = [k for k, v in state.items() if k in expected and v.shape != expected[k].shape]
        if bad:
            raise ConfigError(f"{p}: {bad[0]} has shape {tuple(state[bad[0]].shape)}, "
                              f"expected {tuple(expected[bad[0]].shape)}")
        dec.load_state_dict({**{k: v for k, v in state.items() if k in expected}, "codebook": codebook})
        return dec.eval()


def parse_segmentation(text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The leading 4 ``<loc>`` and 16 ``<seg>`` tokens of an answer, or None when invalid.

    Returns:
        ``(box [4] = y0, x0, y1, x1 in [0, 1], codes [16] int)``.
    """
    head = re.match(r"\s*((?:<loc\d{4}>\s*){4})((?:<seg\d{3}>\s*){16})", text)
    if head is None:
        return None
    loc = np.array([int(v) for v in _LOC.findall(head.group(1))])
    seg = np.array([int(v) for v in _SEG.findall(head.group(2))])
    if loc.max() > 1023 or seg.max() >= N_CODES or loc[2] <= loc[0] or loc[3] <= loc[1]:
        return None
    return loc / 1023.0, seg


def place_mask(logits64: np.ndarray, box: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a ``[64, 64]`` mask logit map into ``box`` (y0, x0, y1, x1 in [0, 1]); ``[H, W]`` bool."""
    y0, x0, y1, x1 = (int(box[0] * height), int(box[1] * width), int(box[2] * height), int(box[3] * width))
    mask = np.zeros((height, width), dtype=bool)
    if x1 <= x0 or y1 <= y0:
        return mask
    m = Image.fromarray(np.asarray(logits64, dtype=np.float32)).resize((x1 - x0, y1 - y0), Image.BILINEAR)
    mask[y0:y1, x0:x1] = np.asarray(m) > 0.0
    return mask


def decode_segmentations(texts: list[str], sizes: list[tuple[int, int]], decoder: MaskDecoder) -> list[np.ndarray]:
    """PaliGemma answers -> ``[H, W]`` bool masks (empty for invalid answers).

    Args:
        texts: generated answers with special tokens kept.
        sizes: ``(width, height)`` of each image.
        decoder: the mask decoder.
    """
    parsed = [parse_segmentation(t) for t in texts]
    valid = [i for i, p in enumerate(parsed) if p is not None]
    out = [np.zeros((h, w), dtype=bool) for w, h in sizes]
    if valid:
        codes = torch.as_tensor(np.stack([parsed[i][1] for i in valid]))  # type: ignore[index]
        logits = decoder(codes.to(decoder.codebook.device)).float().cpu().numpy()
        for k, i in enumerate(valid):
            w, h = sizes[i]
            out[i] = place_mask(logits[k], parsed[i][0], w, h)  # type: ignore[index]
    return out


def seg_tokens() -> list[str]:
    """The 128 ``<segNNN>`` token strings (PaliGemma's tokenizer has them after ``<loc>``)."""
    return [f"<seg{i:03d}>" for i in range(N_CODES)]


def segmentation_tokens(box: tuple[float, float, float, float], codes: np.ndarray, width: int,
                        height: int) -> str:
    """A PaliGemma answer for a pixel ``box`` ``(x0, y0, x1, y1)`` and 16 codes (inverse of parsing)."""
    x0, y0, x1, y1 = box
    bins = [min(1023, max(0, round(v * 1023))) for v in (y0 / height, x0 / width, y1 / height, x1 / width)]
    return "".join(f"<loc{b:04d}>" for b in bins) + "".join(f"<seg{int(c):03d}>" for c in codes)
