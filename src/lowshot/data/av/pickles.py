"""Pickle-based files of the released archives, read without running code where possible.

Per-class feature pickles of the TCaF / AV-Diff / ClipClap archives (reference §2.6 b-d):
each ``<stage>/<ClassName>.pkl`` holds a dict::

    {"features": [array, ...], "video_names": [b"...", ...], "fps": [25, ...]}

with ``[T_i, D]`` items (temporal, TCaF/AV-Diff) or ``[D]`` items (per-video vectors,
ClipClap). The kind is detected from the content. The class-embedding ``.npy`` files (§2.5)
are ``np.save``-d dicts ``{name: float32[D]}``, i.e. pickles too.

All of them hold only dicts, lists, tuples, str/bytes, numbers and numpy arrays, so they are
read with a **restricted unpickler** that resolves only the few numpy globals needed to
rebuild arrays (numpy 1.x ``numpy.core.*`` and 2.x ``numpy._core.*`` paths): no trust is
needed, and a file that names any other global (``os.system``, a class, ...) is refused
with :class:`~lowshot.errors.UntrustedPickleError` naming the file and the global, before
anything is called. ``trust_pickle=True`` lets such a file (one the selected layout reads)
be read with the full unpickler, which can run code.
"""

from __future__ import annotations

import codecs
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from lowshot.errors import DataError, UntrustedPickleError
from lowshot.utils.io import atomic_path


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol <= 2 pickles use it for bytes (latin-1 only)."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any] | type]:
    """(module, name) -> object: the only globals the restricted unpickler resolves."""
    try:  # numpy >= 2 (numpy 1.x has no numpy._core)
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Callable[..., Any] | type] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core", "numpy._core"):  # pickles name the numpy that wrote them
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class RefusedGlobal(pickle.UnpicklingError):
    """The restricted unpickler met a global outside the allow-list."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds only containers, scalars and numpy arrays."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None


def _unpickle(
    path: Path,
    trust_pickle: bool,
    offset: int = 0,
    reader: Callable[[BinaryIO], object] | None = None,
) -> object:
    """Unpickle ``path`` from byte ``offset``: restricted, or fully when trusted and needed.

    Args:
        path: the file.
        trust_pickle: allow the full unpickler for a file the restricted one refuses.
        offset: where the pickle stream starts (after an ``.npy`` header).
        reader: the full (trusted) reader of the open file, positioned at ``offset``.

    Raises:
        UntrustedPickleError: the file names a global outside the allow-list, without trust.
        DataError: missing or unreadable file.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            try:
                return _DataOnlyUnpickler(fh).load()
            except RefusedGlobal as err:
                if not trust_pickle:
                    raise UntrustedPickleError(
                        f"{path}: refused to unpickle the global '{err.qualname}' (without trust only "
                        "dicts, lists, strings, numbers and numpy arrays are read); read it only if you "
                        "trust its source: trust_pickle=True (CLI --trust-pickle, config "
                        "data.trust_pickle: true) uses the full unpickler, which can run code"
                    ) from None
            fh.seek(offset)
            return (reader or pickle.load)(fh)  # noqa: S301 - explicit trust given
    except UntrustedPickleError:
        raise
    except FileNotFoundError:
        raise DataError(f"missing file {path}") from None
    except Exception as err:  # unpickling garbage can raise almost anything
        raise DataError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None


def load_pickle(path: Path, trust_pickle: bool = False) -> object:
    """Unpickle a ``.pkl`` file (restricted unless trusted and needed); failures are DataErrors."""
    return _unpickle(Path(path), trust_pickle)


def load_npy(path: Path, trust_pickle: bool = False) -> np.ndarray:
    """Read an ``.npy`` file; an object array (a pickled payload) goes through :func:`_unpickle`.

    Raises:
        UntrustedPickleError: the payload names a global outside the allow-list, without trust.
        DataError: missing file, bad header, unreadable payload.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                _, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise DataError(f"{path}: unsupported .npy format version {version}")
            offset = fh.tell()
    except FileNotFoundError:
        raise DataError(f"missing file {path}") from None
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{path}: not a readable .npy file ({type(err).__name__}: {err})") from None
    if not dtype.hasobject:
        try:
            return np.load(path, allow_pickle=False)
        except Exception as err:
            raise DataError(f"{path}: not a readable .npy file ({err})") from None
    obj = _unpickle(path, trust_pickle, offset, lambda fh: pickle.load(fh, encoding="latin1"))  # noqa: S301
    if not isinstance(obj, np.ndarray):
        raise DataError(f"{path}: the pickled payload is a {type(obj).__name__}, not an array")
    return obj


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
        """``D``, the last dim of the first item."""
        return int(self.features[0].shape[-1])

    @property
    def lengths(self) -> np.ndarray:
        """``[N]`` steps per video (1 for vectors)."""
        if self.kind == "vector":
            return np.ones(len(self.video_ids), np.int64)
        return np.array([len(f) for f in self.features], dtype=np.int64)


def _sequence(
    path: Path, obj: dict[Any, Any], key: str
) -> list[Any] | tuple[Any, ...] | np.ndarray:
    """``obj[key]`` if it is a list, tuple or array (one item per video)."""
    value = obj[key]
    if not isinstance(value, list | tuple | np.ndarray) or (
        isinstance(value, np.ndarray) and value.ndim == 0
    ):
        raise DataError(
            f"{path}: '{key}' must be a list with one item per video, got {type(value).__name__}"
        )
    return value


def _feature_item(path: Path, i: int, item: object) -> np.ndarray:
    """Item ``i`` of ``features`` as a numeric array."""
    try:
        arr = np.asarray(item)
    except (ValueError, TypeError) as err:
        raise DataError(f"{path}: item {i} of 'features' is not an array ({err})") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"{path}: item {i} of 'features' is not numeric ({type(item).__name__} of dtype {arr.dtype})"
        )
    return arr


def read_pickle_class_file(path: Path, trust_pickle: bool) -> PickleClassFile:
    """Read and validate one per-class pickle (structure, ranks, dims; not values).

    Raises:
        UntrustedPickleError: the file needs a global outside the allow-list and no trust.
        DataError: missing/corrupt file, missing keys, ragged dims, empty sequences,
            feature and name counts that differ.
    """
    obj = load_pickle(path, trust_pickle)
    if not isinstance(obj, dict) or "features" not in obj or "video_names" not in obj:
        raise DataError(f"{path}: expected a dict with 'features' and 'video_names'")
    feats = [_feature_item(path, i, f) for i, f in enumerate(_sequence(path, obj, "features"))]
    ids = [decode_id(n) for n in _sequence(path, obj, "video_names")]
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
