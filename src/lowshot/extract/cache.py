"""The per-video feature cache of ``lowshot extract`` (resumable; read lazily by the assembly).

One folder per encoder set (``OUT/.extract_cache/<key>/``) holds each extracted video once, in
either of two pickle-free forms, both written atomically:

* ``<id>.npz``: one video (the in-process and ``--workers`` paths; a killed run loses at most
  the video being encoded);
* ``shard-<hash>.safetensors``: up to ``--shard-size`` videos (the Ray Data path), tensors
  ``<id>/<modality>`` of ``[T, D]`` float32 and, in the header metadata, the ids of the shard
  (``videos``) and the unusable ones with their reason (``skipped``: id -> [reason, detail]).

``<id>`` is a hash of the video's item key. :func:`scan` indexes the folder (npz member headers
and safetensors headers only, no feature is read), and :class:`CachedFeatures` reads one video's
features on access, so the assembly holds one video at a time.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowshot.utils.io import atomic_path

SHARD_GLOB = "shard-*.safetensors"


def video_id(key: str) -> str:
    """Cache id of an item key (16 hex digits)."""
    return hashlib.sha1(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Entry:
    """Where one cached video is: its file, and its id inside a shard (None: a per-video ``.npz``)."""

    file: Path
    shard_id: str | None = None
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # modality -> shape (usable videos)
    reason: tuple[str, str] | None = None  # (reason, detail) of an unusable video


def _npz_entry(file: Path) -> Entry:
    with zipfile.ZipFile(file) as z:
        names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
        if "reason" in names:
            with np.load(file, allow_pickle=False) as a:
                return Entry(file, reason=(str(a["reason"]), str(a["detail"])))
        shapes = []
        for n in sorted(names):
            with z.open(f"{n}.npy") as fh:
                fmt = np.lib.format
                header = fmt.read_array_header_1_0 if fmt.read_magic(fh) == (1, 0) else fmt.read_array_header_2_0
                shape = header(fh)[0]  # the header only
            shapes.append((n, tuple(shape)))
    return Entry(file, shapes=tuple(shapes))


def _shard_entries(file: Path) -> dict[str, Entry]:
    from safetensors import safe_open

    out = {}
    with safe_open(file, "np") as f:
        meta = f.metadata() or {}
        skipped = json.loads(meta.get("skipped", "{}"))
        by_id: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for name in f.keys():
            vid, _, modality = name.partition("/")
            by_id.setdefault(vid, []).append((modality, tuple(f.get_slice(name).get_shape())))
    for vid in json.loads(meta.get("videos", "[]")):
        if vid in skipped:
            out[vid] = Entry(file, vid, reason=tuple(skipped[vid]))  # type: ignore[arg-type]
        else:
            out[vid] = Entry(file, vid, shapes=tuple(sorted(by_id.get(vid, []))))
    return out


def scan(folder: Path) -> dict[str, Entry]:
    """Cache id -> entry of every complete video in ``folder`` (temporary files ignored)."""
    index: dict[str, Entry] = {}
    for shard in sorted(folder.glob(SHARD_GLOB)):
        index.update(_shard_entries(shard))
    for file in folder.glob("*.npz"):
        if not file.name.startswith("."):
            index[file.stem] = _npz_entry(file)
    return index


def read(entry: Entry, modalities: Sequence[str]) -> dict[str, np.ndarray]:
    """The features ``modality -> [T, D]`` of one cached video."""
    if entry.shard_id is None:
        with np.load(entry.file, allow_pickle=False) as z:
            return {m: z[m] for m in modalities}
    from safetensors import safe_open

    with safe_open(entry.file, "np") as f:
        return {m: f.get_tensor(f"{entry.shard_id}/{m}") for m in modalities}


def write_npz(file: Path, payload: dict[str, np.ndarray]) -> None:
    """One video's ``.npz`` (features, or ``reason``/``detail``), atomically."""
    with atomic_path(file) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **payload)


def write_shard(folder: Path, rows: Sequence[tuple[str, dict[str, np.ndarray] | tuple[str, str]]]) -> Path:
    """One ``shard-<hash>.safetensors`` of ``rows`` (id, features or (reason, detail)), atomically.

    The name hashes the ids, so a retried task rewrites the same file.
    """
    from safetensors.numpy import save_file

    ids = [vid for vid, _ in rows]
    tensors = {f"{vid}/{m}": np.ascontiguousarray(a, np.float32)
               for vid, feats in rows if isinstance(feats, dict) for m, a in feats.items()}
    skipped = {vid: list(r) for vid, r in rows if not isinstance(r, dict)}
    file = folder / f"shard-{hashlib.sha1(' '.join(ids).encode()).hexdigest()[:16]}.safetensors"
    with atomic_path(file) as tmp:
        save_file(tensors, str(tmp), metadata={"videos": json.dumps(ids), "skipped": json.dumps(skipped)})
    return file


class CachedFeatures(Mapping[str, dict[str, np.ndarray]]):
    """Item key -> modality -> ``[T, D]`` of the usable videos, read from the cache on access."""

    def __init__(self, entries: dict[str, Entry], modalities: Sequence[str]) -> None:
        self.entries = entries
        self.modalities = tuple(modalities)

    def __getitem__(self, key: str) -> dict[str, np.ndarray]:
        return read(self.entries[key], self.modalities)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def rows(self, key: str, modality: str) -> int:
        """Time steps of one video's ``modality`` (from the index; nothing is read)."""
        return dict(self.entries[key].shapes)[modality][0]
