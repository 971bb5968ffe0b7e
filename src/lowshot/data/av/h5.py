"""Per-class HDF5 files of the AVCA averaged-feature archive (reference §2.6 a).

Each ``{audio,video}/<stage>/<ClassName>.h5`` holds ``data`` (float ``[N, D]``, one
time-averaged vector per video) and ``video_urls`` (``[N]``, fixed ``S80`` bytes in the
archive, variable-length strings from the splitting scripts; both are accepted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path

import h5py
import numpy as np

from lowshot.data.av.pickles import decode_id
from lowshot.errors import DataError
from lowshot.utils.io import atomic_path


def read_h5_class_file(
    path: Path, load_data: bool = True
) -> tuple[np.ndarray | tuple[int, int], list[str]]:
    """Read one averaged class file.

    Args:
        path: the ``.h5`` file.
        load_data: False reads only the shape (cheap sizing pass of the converter).

    Returns:
        (``[N, D]`` array, or its shape when ``load_data`` is False; ``[N]`` video ids).

    Raises:
        DataError: missing/corrupt file, missing ``data``/``video_urls``, bad rank, count mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing file {path}")
    try:
        with h5py.File(path, "r") as fh:
            for key in ("data", "video_urls"):
                if key not in fh:
                    raise DataError(f"{path}: no '{key}' dataset (has {sorted(fh.keys())})")
            dset = fh["data"]
            if dset.ndim != 2:
                raise DataError(f"{path}: 'data' must be [N, D], got shape {dset.shape}")
            data = dset[()] if load_data else tuple(int(s) for s in dset.shape)
            ids = [decode_id(u) for u in fh["video_urls"][()]]
    except DataError:
        raise
    except Exception as err:  # h5py raises OSError/KeyError/... for truncated or foreign files
        raise DataError(
            f"{path}: not a readable HDF5 feature file ({type(err).__name__}: {err})"
        ) from None
    n = data.shape[0] if load_data else data[0]
    if n != len(ids):
        raise DataError(f"{path}: {n} feature rows but {len(ids)} video_urls")
    if n == 0:
        raise DataError(f"{path}: no videos")
    return data, ids


def write_h5_class_file(path: Path, data: np.ndarray | Iterable[np.ndarray], video_ids: Sequence[str],
                        chunk: int = 1024) -> None:
    """Write an averaged class file as in the archive (``video_urls`` as ``S80``), atomically.

    Args:
        path: target ``.h5``.
        data: ``[N, D]`` (array or list), or an iterator of ``N`` rows ``[D]`` (streamed: written
            ``chunk`` rows at a time, so at most ``chunk`` rows are in memory).
        video_ids: ``[N]`` ids.
        chunk: rows per write.
    """
    with atomic_path(Path(path)) as tmp, h5py.File(tmp, "w") as fh:
        if isinstance(data, (np.ndarray, list, tuple)):
            fh.create_dataset("data", data=np.asarray(data))
        else:
            rows, start = iter(data), 0
            while block := list(islice(rows, chunk)):
                arr = np.stack(block)
                if start == 0:
                    fh.create_dataset("data", shape=(len(video_ids), arr.shape[1]), dtype=arr.dtype)
                fh["data"][start : start + len(arr)] = arr
                start += len(arr)
            if start != len(video_ids):
                raise ValueError(f"{path}: {start} rows for {len(video_ids)} video ids")
        fh.create_dataset(
            "video_urls", data=np.array([v.encode("utf-8") for v in video_ids], dtype="S80")
        )
