"""Per-clip S3D feature sequences of the video-adverb benchmarks.

Released format (``reference/adverbs.md`` §2.2): a ``torch.save`` dict with ``features``
(``clip_id -> {"s3d_features": [T, 1024], "video_embedding_joint_space": [T, 512]}``) and
``metadata`` (numpy arrays). It is a pickle, so it is read only with explicit trust
(``trust_pickle=True`` / ``--trust-pickle``); :func:`convert_features` writes the safe
format (one safetensors file: concatenated sequences + lengths, clip ids in the header
metadata as JSON; no pickle).

Clip ids are normalised (§10.4): the store indexes ``str(key)``, and a lookup tries the CSV
id as written, then its integer form, so int-keyed HowTo100M dicts and string CSV ids meet.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowshot.data.adverbs.splits import SplitRows, dataset_folder
from lowshot.errors import DataError, UntrustedPickleError

VIDEO_KEY = "s3d_features"
JOINT_KEY = "video_embedding_joint_space"
SAFE_FORMAT = "lowshot.adverb_features.v1"
#: released layout below the data root (ReGaDa ``video-adverb-datasets_s3d.zip``)
FEATURE_SUBDIR = Path("s3d") / "ht1m_init" / "stack_size=16_freq=1" / "rgb"
#: AIR's own release (air-cvpr23 GitHub release ``feat_stack=16_stride=1``)
AIR_NATIVE_SUBDIR = Path("s3d_features") / "stack=16_stride=1"


@dataclass
class ClipFeatureStore:
    """Zero-padded per-clip feature sequences.

    Attributes:
        clip_ids: ``[N]`` normalised (str) clip ids, in storage order.
        video: ``[N, T_max, D_x]`` float32 S3D ``mixed_5c`` features, zero-padded.
        joint: ``[N, T_max, D_j]`` float32 joint-space embeddings, or None if absent.
        lengths: ``[N]`` int64 true number of time steps per clip.
        sources: files the store was read from.
        merge_conflicts: clip ids found in several files with different values (first kept).
    """

    clip_ids: list[str]
    video: torch.Tensor
    joint: torch.Tensor | None
    lengths: torch.Tensor
    sources: list[Path] = field(default_factory=list)
    merge_conflicts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pos = {cid: i for i, cid in enumerate(self.clip_ids)}

    def __len__(self) -> int:
        return len(self.clip_ids)

    @property
    def video_dim(self) -> int:
        """``d_x``: the last dim of the video features."""
        return int(self.video.shape[-1])

    @property
    def joint_dim(self) -> int | None:
        """``d_j``: the last dim of the joint-space embeddings, or None when the file has none."""
        return None if self.joint is None else int(self.joint.shape[-1])

    def find(self, clip_id: str | int) -> int | None:
        """Storage index of ``clip_id`` (tries it as is, then its int form), or None."""
        key = str(clip_id)
        if key in self._pos:
            return self._pos[key]
        try:
            return self._pos.get(str(int(key)))
        except ValueError:
            return None

    def rows_index(self, rows: SplitRows) -> np.ndarray:
        """``[len(rows)]`` storage index of each annotation row.

        Raises:
            DataError: clip ids of the CSV are missing from the features (names both files).
        """
        out = np.empty(len(rows), dtype=np.int64)
        missing: list[str] = []
        for i, cid in enumerate(rows.clip_ids):
            j = self.find(cid)
            if j is None:
                missing.append(cid)
            else:
                out[i] = j
        if missing:
            srcs = ", ".join(str(s) for s in self.sources) or "<in-memory>"
            raise DataError(
                f"{rows.path}: {len(missing)} clip id(s) missing from the features ({srcs}), "
                f"e.g. {sorted(set(missing))[:5]}"
            )
        return out


def _sequences_from_released(obj: Any, path: Path) -> dict[str, dict[str, torch.Tensor]]:
    if not isinstance(obj, Mapping) or "features" not in obj:
        raise DataError(f"{path}: not a released feature file (expected a dict with 'features')")
    feats = obj["features"]
    if not isinstance(feats, Mapping) or not feats:
        raise DataError(f"{path}: 'features' is empty or not a dict")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, entry in feats.items():
        if not isinstance(entry, Mapping) or VIDEO_KEY not in entry:
            raise DataError(f"{path}: clip '{key}' has no '{VIDEO_KEY}'")
        item = {VIDEO_KEY: torch.as_tensor(np.asarray(entry[VIDEO_KEY]), dtype=torch.float32)}
        if JOINT_KEY in entry:
            item[JOINT_KEY] = torch.as_tensor(np.asarray(entry[JOINT_KEY]), dtype=torch.float32)
        out[str(key)] = item
    return out


def _check_and_pad(
    seqs: Mapping[str, Mapping[str, torch.Tensor]],
    path: Path,
    video_dim: int | None,
    joint_dim: int | None,
) -> ClipFeatureStore:
    """Validate shapes/values and zero-pad into a :class:`ClipFeatureStore`."""
    ids = list(seqs)
    has_joint = all(JOINT_KEY in seqs[c] for c in ids)
    dims: dict[str, int | None] = {VIDEO_KEY: video_dim, JOINT_KEY: joint_dim}
    lengths = []
    for cid in ids:
        t_len = None
        for key in (VIDEO_KEY, JOINT_KEY) if has_joint else (VIDEO_KEY,):
            x = seqs[cid][key]
            if x.ndim != 2 or x.shape[0] == 0:
                raise DataError(
                    f"{path}: clip '{cid}' {key} has shape {tuple(x.shape)}, expected [T>0, D]"
                )
            if dims[key] is None:
                dims[key] = int(x.shape[1])
            if x.shape[1] != dims[key]:
                raise DataError(
                    f"{path}: clip '{cid}' {key} has dimension {x.shape[1]}, expected {dims[key]}"
                )
            if t_len is not None and x.shape[0] != t_len:
                raise DataError(
                    f"{path}: clip '{cid}' has {t_len} video but {x.shape[0]} joint steps"
                )
            t_len = int(x.shape[0])
            if not torch.isfinite(x).all():
                raise DataError(f"{path}: clip '{cid}' {key} contains NaN or inf")
        lengths.append(t_len)
    t_max = max(lengths)
    video = torch.zeros(len(ids), t_max, int(dims[VIDEO_KEY] or 0))
    joint = torch.zeros(len(ids), t_max, int(dims[JOINT_KEY] or 0)) if has_joint else None
    for i, cid in enumerate(ids):
        video[i, : lengths[i]] = seqs[cid][VIDEO_KEY]
        if joint is not None:
            joint[i, : lengths[i]] = seqs[cid][JOINT_KEY]
    return ClipFeatureStore(ids, video, joint, torch.tensor(lengths, dtype=torch.int64), [path])


def read_released_features(
    path: str | Path,
    trust_pickle: bool = False,
    video_dim: int | None = None,
    joint_dim: int | None = None,
) -> ClipFeatureStore:
    """Read a released ``.pth`` feature dict (pickle: needs ``trust_pickle=True``).

    Raises:
        UntrustedPickleError: ``trust_pickle`` is False.
        DataError: missing/corrupt file, wrong dims, NaN/inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"feature file not found: {path}")
    if not trust_pickle:
        raise UntrustedPickleError(
            f"{path} is a pickle (torch.save) file and can run code when loaded; pass "
            f"trust_pickle=True / --trust-pickle if you trust it, or convert it once with "
            f"`lowshot adverbs convert --trust-pickle {path}`"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise DataError(f"{path}: cannot read feature file ({type(err).__name__}: {err})") from err
    return _check_and_pad(_sequences_from_released(obj, path), path, video_dim, joint_dim)


def write_safe_features(store: ClipFeatureStore, path: str | Path) -> Path:
    """Write ``store`` as one safetensors file (no pickle), atomically."""
    from lowshot.utils.io import save_state

    path = Path(path)
    lengths = store.lengths.tolist()
    mask = torch.arange(store.video.shape[1])[None, :] < store.lengths[:, None]
    tensors = {"video": store.video[mask], "lengths": store.lengths}
    if store.joint is not None:
        tensors["joint"] = store.joint[mask]
    meta = {"format": SAFE_FORMAT, "clip_ids": json.dumps(store.clip_ids)}
    assert sum(lengths) == tensors["video"].shape[0]
    save_state(path, tensors, meta)
    return path


def read_safe_features(
    path: str | Path, video_dim: int | None = None, joint_dim: int | None = None
) -> ClipFeatureStore:
    """Read the safe format written by :func:`write_safe_features`.

    Raises:
        DataError: missing/corrupt file, wrong dims, NaN/inf values.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(f"feature file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        if meta.get("format") != SAFE_FORMAT:
            raise DataError(
                f"{path}: not a lowshot adverb feature file (format {meta.get('format')})"
            )
        ids = json.loads(meta["clip_ids"])
        lengths = tensors["lengths"].tolist()
        video = torch.split(tensors["video"].float(), lengths)
        joint = torch.split(tensors["joint"].float(), lengths) if "joint" in tensors else None
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - header/tensor errors mean a corrupt file
        raise DataError(f"{path}: cannot read feature file ({type(err).__name__}: {err})") from err
    if len(ids) != len(lengths):
        raise DataError(f"{path}: {len(ids)} clip ids but {len(lengths)} lengths")
    seqs = {
        cid: ({VIDEO_KEY: video[i]} | ({JOINT_KEY: joint[i]} if joint is not None else {}))
        for i, cid in enumerate(ids)
    }
    return _check_and_pad(seqs, path, video_dim, joint_dim)


def read_features(
    path: str | Path,
    trust_pickle: bool = False,
    video_dim: int | None = None,
    joint_dim: int | None = None,
) -> ClipFeatureStore:
    """Read features by suffix: ``.safetensors`` (safe) or ``.pth``/``.pt`` (pickle)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_safe_features(path, video_dim, joint_dim)
    return read_released_features(path, trust_pickle, video_dim, joint_dim)


def merge_stores(stores: Iterable[ClipFeatureStore]) -> ClipFeatureStore:
    """Union of stores (the unseen splits merge the seen train and test files).

    A clip present in several stores keeps its first occurrence; ids whose values differ
    are listed in ``merge_conflicts``.
    """
    stores = list(stores)
    ids: list[str] = []
    where: list[tuple[int, int]] = []
    seen: dict[str, tuple[int, int]] = {}
    conflicts: list[str] = []
    for s_i, store in enumerate(stores):
        for c_i, cid in enumerate(store.clip_ids):
            if cid in seen:
                f_s, f_c = seen[cid]
                a = stores[f_s].video[f_c, : stores[f_s].lengths[f_c]]
                b = store.video[c_i, : store.lengths[c_i]]
                if a.shape != b.shape or not torch.equal(a, b):
                    conflicts.append(cid)
                continue
            seen[cid] = (s_i, c_i)
            ids.append(cid)
            where.append((s_i, c_i))
    t_max = max(int(s.video.shape[1]) for s in stores)
    has_joint = all(s.joint is not None for s in stores)
    video = torch.zeros(len(ids), t_max, stores[0].video_dim)
    joint = torch.zeros(len(ids), t_max, stores[0].joint_dim or 0) if has_joint else None
    lengths = torch.empty(len(ids), dtype=torch.int64)
    for i, (s_i, c_i) in enumerate(where):
        s = stores[s_i]
        n = int(s.lengths[c_i])
        lengths[i] = n
        video[i, :n] = s.video[c_i, :n]
        if joint is not None:
            joint[i, :n] = s.joint[c_i, :n]  # type: ignore[index]
    sources = [p for s in stores for p in s.sources]
    return ClipFeatureStore(ids, video, joint, lengths, sources, conflicts)


def feature_file(data_root: str | Path, dataset: str, part: str) -> Path:
    """Feature file of ``part`` (train/test) in the released layout.

    Prefers a converted ``<part>.safetensors`` next to ``<part>.pth``. Looks below
    ``<root>/features/<DATASET>/...`` and ``<root>/<DATASET>/...``; for AIR also in AIR's
    native layout ``<root>/air/s3d_features/stack=16_stride=1/`` (or without ``air/``).

    Raises:
        DataError: neither file exists (the message names the expected path).
    """
    root = Path(data_root)
    folder = dataset_folder(dataset)
    candidates = [root / "features" / folder / FEATURE_SUBDIR, root / folder / FEATURE_SUBDIR]
    if folder == "AIR":
        candidates += [root / "air" / AIR_NATIVE_SUBDIR, root / AIR_NATIVE_SUBDIR]
    for base in candidates:
        for suffix in (".safetensors", ".pth"):
            if (base / f"{part}{suffix}").is_file():
                return base / f"{part}{suffix}"
    raise DataError(
        f"feature file not found: {candidates[0] / (part + '.pth')} (nor .safetensors); download "
        f"the released S3D features (reference/adverbs.md §2.1) or run `lowshot adverbs synth`"
    )


def convert_features(
    src: str | Path, dst: str | Path | None = None, trust_pickle: bool = False
) -> Path:
    """Convert a released ``.pth`` feature file into the safe format (default: same stem)."""
    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_suffix(".safetensors")
    store = read_released_features(src, trust_pickle=trust_pickle)
    return write_safe_features(store, dst)


def write_released_features(
    path: str | Path,
    video: Mapping[str | int, np.ndarray],
    joint: Mapping[str | int, np.ndarray] | None = None,
    fps: float = 25.0,
) -> Path:
    """Write sequences in the released ``.pth`` layout (used by the synthetic generator).

    Args:
        path: output ``.pth``.
        video: clip id -> ``[T, D_x]`` array.
        joint: clip id -> ``[T, D_j]`` array (optional).
        fps: frame rate used for the ``frame_samples`` metadata.
    """
    from lowshot.utils.io import atomic_path

    feats: dict[Any, dict[str, torch.Tensor]] = {}
    meta: dict[Any, dict[str, np.ndarray]] = {}
    for cid, x in video.items():
        t_len = int(np.asarray(x).shape[0])
        feats[cid] = {VIDEO_KEY: torch.as_tensor(np.asarray(x, dtype=np.float32))}
        if joint is not None:
            feats[cid][JOINT_KEY] = torch.as_tensor(np.asarray(joint[cid], dtype=np.float32))
        starts = np.arange(t_len, dtype=np.float64)
        per = int(math.ceil(fps))
        meta[cid] = {
            "start_time": starts,
            "end_time": starts + 1.0,
            "frame_samples": (
                np.arange(t_len)[:, None] * per + np.linspace(0, per - 1, 16)[None]
            ).astype(np.int64),
        }
    with atomic_path(Path(path)) as tmp:
        torch.save({"features": feats, "metadata": meta}, tmp)
    return Path(path)
