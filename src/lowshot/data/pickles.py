"""Per-class pickle files of the released TCaF / AV-Diff / ClipClap archives (reference §2.6 b-d).

Each ``<stage>/<ClassName>.pkl`` holds a dict::

    {"features": [array, ...], "video_names": [b"...", ...], "fps": [25, ...]}

with ``[T_i, D]`` items (temporal, TCaF/AV-Diff) or ``[D]`` items (per-video vectors,
ClipClap). The kind is detected from the content.

Unpickling runs arbitrary code, so these files are read only with explicit trust
(``trust_pickle=True``); otherwise :class:`~lowshot.errors.UntrustedPickleError` explains how
to convert the tree once (``lowshot data convert``) into the pickle-free format.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowshot.errors import DataError, UntrustedPickleError
from lowshot.utils.io import atomic_path


def require_trust(path: Path, trust_pickle: bool) -> None:
    """Raise :class:`UntrustedPickleError` for ``path`` unless ``trust_pickle``."""
    if not trust_pickle:
        raise UntrustedPickleError(
            f"{path} is a pickle, which can run code when loaded; read it only if you trust its "
            "source: pass trust_pickle=True (CLI: --trust-pickle, config: data.trust_pickle: true), "
            "or convert the tree once with `lowshot data convert SRC_ROOT DATASET FEATURE_DIR OUT "
            "--trust-pickle` and use the pickle-free copy"
        )


def load_pickle(path: Path, trust_pickle: bool) -> object:
    """Unpickle ``path`` after the trust check; any failure becomes a DataError."""
    require_trust(path, trust_pickle)
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - explicit trust given
    except FileNotFoundError:
        raise DataError(f"missing file {path}") from None
    except Exception as err:  # unpickling garbage can raise almost anything
        raise DataError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None


def decode_id(name: object) -> str:
    """Video name as str (bytes are decoded as UTF-8, not ``str(bytes)`` as upstream)."""
    if isinstance(name, bytes | np.bytes_):
        return bytes(name).decode("utf-8")
    return str(name)


@dataclass(frozen=True)
class PickleClassFile:
    """Content of one per-class pickle.

    Attributes:
        kind: ``"temporal"`` (items ``[T_i, D]``) or ``"vector"`` (items ``[D]``).
        features: temporal: list of ``[T_i, D]`` arrays; vector: ``[N, D]`` array.
        video_ids: ``[N]`` str ids.
    """

    kind: str
    features: list[np.ndarray] | np.ndarray
    video_ids: list[str]

    @property
    def dim(self) -> int:
        return int(self.features[0].shape[-1])

    @property
    def lengths(self) -> np.ndarray:
        """``[N]`` steps per video (1 for vectors)."""
        if self.kind == "vector":
            return np.ones(len(self.video_ids), np.int64)
        return np.array([len(f) for f in self.features], dtype=np.int64)


def read_pickle_class_file(path: Path, trust_pickle: bool) -> PickleClassFile:
    """Read and validate one per-class pickle (structure, ranks, dims; not values).

    Raises:
        UntrustedPickleError: without ``trust_pickle``.
        DataError: missing/corrupt file, missing keys, ragged dims, empty sequences,
            feature and name counts that differ.
    """
    obj = load_pickle(path, trust_pickle)
    if not isinstance(obj, dict) or "features" not in obj or "video_names" not in obj:
        raise DataError(f"{path}: expected a dict with 'features' and 'video_names'")
    feats = [np.asarray(f) for f in obj["features"]]
    ids = [decode_id(n) for n in obj["video_names"]]
    if len(feats) != len(ids):
        raise DataError(f"{path}: {len(feats)} feature items but {len(ids)} video names")
    if not feats:
        raise DataError(f"{path}: no videos")
    ranks = {f.ndim for f in feats}
    if ranks == {1}:
        kind = "vector"
    elif ranks == {2}:
        kind = "temporal"
    else:
        raise DataError(
            f"{path}: feature items must all be [D] or all [T, D], got ranks {sorted(ranks)}"
        )
    dims = {f.shape[-1] for f in feats}
    if len(dims) != 1:
        raise DataError(f"{path}: feature items disagree on the dimension: {sorted(dims)}")
    if kind == "temporal":
        empty = [ids[i] for i, f in enumerate(feats) if len(f) == 0]
        if empty:
            raise DataError(f"{path}: empty feature sequence for video '{empty[0]}'")
        return PickleClassFile(kind, feats, ids)
    return PickleClassFile(kind, np.stack(feats), ids)


def write_pickle_class_file(
    path: Path, features: list[np.ndarray] | np.ndarray, video_ids: list[str]
) -> None:
    """Write a per-class pickle in the released format (names as bytes, fps 25), atomically.

    Args:
        path: target ``.pkl``.
        features: ``[T_i, D]`` arrays (temporal) or ``[N, D]`` / list of ``[D]`` (vectors).
        video_ids: ``[N]`` ids.
    """
    obj = {
        "features": [np.asarray(f) for f in features],
        "video_names": [v.encode("utf-8") for v in video_ids],
        "fps": [25] * len(video_ids),
    }
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
