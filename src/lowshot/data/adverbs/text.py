"""Text files of the video-adverb benchmarks: S3D text weights, its word dictionary, caches.

* S3D-HowTo100M text weights (``reference/adverbs.md`` §7.1): ``s3d_howto100m.pth``
  (pickle, needs trust) or a converted ``.safetensors`` holding the ``text_module.*``
  tensors (:data:`S3D_TEXT_KEYS`); the word dictionary ``s3d_dict.npy`` (row i = token
  i + 1) and the tokenizer (:func:`words`).
* A text cache (``{texts, embeddings}``) is a safetensors file with the texts as JSON in
  its metadata, so S3D weights are needed only once.

The encoders that use these files are in :mod:`lowshot.extract.text`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from lowshot.errors import DataError, UntrustedPickleError

TEXT_CACHE_FORMAT = "lowshot.text_embeddings.v1"
#: the tensors of the S3D text module, in parameter order (prefix ``text_module.`` on disk)
S3D_TEXT_KEYS = ("word_embd.weight", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
_WORD_RE = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens as the S3D text module splits them."""
    return _WORD_RE.findall(text.lower())


def read_s3d_text_state(path: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    """The ``text_module.*`` tensors of an S3D checkpoint, prefix removed, as float32 (each in its saved shape).

    Raises:
        DataError: missing/unreadable file or missing tensors.
        UntrustedPickleError: a pickle file without ``trust_pickle``.
    """
    if not path.is_file():
        raise DataError(f"S3D weight file not found: {path}")
    if path.suffix == ".safetensors":
        from lowshot.utils.io import load_state

        try:
            state = load_state(path)
        except Exception as err:  # noqa: BLE001
            raise DataError(f"{path}: cannot read weights ({err})") from err
    else:
        if not trust_pickle:
            raise UntrustedPickleError(
                f"{path} is a pickle file; pass trust_pickle=True / --trust-pickle, or convert it "
                f"with `lowshot adverbs convert --trust-pickle {path}`"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001
            raise DataError(f"{path}: cannot read weights ({type(err).__name__}: {err})") from err
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    out = {}
    for k, v in state.items():
        k = k.removeprefix("module.")
        if k.startswith("text_module."):
            out[k.removeprefix("text_module.")] = torch.as_tensor(v).float()
    needed = set(S3D_TEXT_KEYS)
    if not needed <= set(out):
        raise DataError(f"{path}: missing text_module tensors {sorted(needed - set(out))}")
    return out


def read_s3d_word_dict(path: Path, trust_pickle: bool) -> dict[str, int]:
    """``s3d_dict.npy`` -> ``{word: token}`` (token = row + 1; 0 is padding)."""
    if not path.is_file():
        raise DataError(f"S3D word dictionary not found: {path}")
    try:
        vocab = np.load(path, allow_pickle=trust_pickle)
    except ValueError as err:
        raise UntrustedPickleError(f"{path} holds pickled objects; pass trust_pickle=True") from err
    return {str(w): i + 1 for i, w in enumerate(vocab.tolist())}


def convert_s3d_text_weights(
    src: str | Path, dst: str | Path | None = None, trust_pickle: bool = False
) -> Path:
    """Keep only ``text_module.*`` of an S3D checkpoint and write it as safetensors."""
    from lowshot.utils.io import save_state

    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_suffix(".safetensors")
    state = read_s3d_text_state(src, trust_pickle)
    save_state(
        dst, {f"text_module.{k}": v for k, v in state.items()}, {"format": "s3d_text_module"}
    )
    return dst


def save_text_cache(path: str | Path, texts: list[str], embeddings: torch.Tensor) -> Path:
    """Write ``{texts, embeddings [N, D]}`` as safetensors (texts in the metadata)."""
    from lowshot.utils.io import save_state

    if len(texts) != embeddings.shape[0]:
        raise ValueError("texts and embeddings differ in length")
    save_state(
        Path(path),
        {"embeddings": embeddings.float()},
        {"format": TEXT_CACHE_FORMAT, "texts": json.dumps(texts)},
    )
    return Path(path)


def read_text_cache(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """``(texts, embeddings [N, D] float32)`` of a cache written by :func:`save_text_cache`.

    Raises:
        DataError: missing or corrupt file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(f"text embedding file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            emb = fh.get_tensor("embeddings").float()
        texts = json.loads(meta["texts"])
    except Exception as err:  # noqa: BLE001
        raise DataError(f"{path}: not a text embedding cache ({err})") from err
    return texts, emb


def read_word_vectors(path: str | Path, wanted: set[str]) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of the ``wanted`` words from a local word-vector file, and the file's dimension.

    Formats: word2vec binary (``.bin``: a ``"<count> <dim>"`` header line, then per word
    ``<word> `` followed by ``dim`` little-endian float32), or text (GloVe ``.txt``,
    fastText / word2vec ``.vec``: one ``<word> <v1> ... <vD>`` per line, with an optional
    ``"<count> <dim>"`` header). The file is scanned once, until every wanted word is found
    (an empty ``wanted`` reads just enough to know the dimension); only wanted words are kept.
    Words are matched as written in the file (the first occurrence wins).

    Raises:
        DataError: missing file, or a malformed header/line (the line number is named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"word-vector file not found: {path} (word2vec/fastText/GloVe vectors are not "
            "installable offline: download them and point text.vectors at the file)"
        )
    found: dict[str, np.ndarray] = {}
    if path.suffix == ".bin":
        with open(path, "rb") as fh:
            header = fh.readline().split()
            if len(header) != 2:
                raise DataError(f"{path}: word2vec binary needs a '<count> <dim>' header")
            count, dim = int(header[0]), int(header[1])
            for _ in range(count):
                if len(found) == len(wanted):
                    break
                word = bytearray()
                while (ch := fh.read(1)) not in (b" ", b""):
                    if ch != b"\n":
                        word += ch
                raw = fh.read(4 * dim)
                if len(raw) < 4 * dim:
                    raise DataError(f"{path}: truncated after {len(found)} wanted words")
                w = word.decode("utf-8", errors="replace")
                if w in wanted and w not in found:
                    found[w] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        return found, dim
    dim = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.rstrip().split(" ")
            if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])
                continue
            if len(parts) < 2:
                continue
            if dim == 0:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise DataError(f"{path}:{n}: {len(parts) - 1} values, expected {dim}")
            if parts[0] in wanted and parts[0] not in found:
                found[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
            if len(found) == len(wanted):
                break
    return found, dim
