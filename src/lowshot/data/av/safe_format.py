"""Pickle-free, memory-mapped copy of a released feature folder (the recommended path).

The released TCaF / AV-Diff / ClipClap archives are pickles (read by a restricted
unpickler, :mod:`lowshot.data.av.pickles`, but slow to parse) and the temporal ones do not
fit in RAM for VGGSound-cls (~93k videos of 4096-d C3D sequences, 20+ GB). Convert a
folder once::

    lowshot data convert SRC_ROOT DATASET FEATURE_DIR OUT [--split cls]

and point the data root at ``OUT``; :func:`~lowshot.data.av.gzsl.load_gzsl_benchmark` detects
the converted tree and returns the same benchmark, with the feature blocks opened by
``np.load(mmap_mode="r")`` (only the pages a batch touches are read).

Converted layout (no pickle anywhere)::

    OUT/<DS>/class-split/                      copied .txt/.csv files (both splits, name CSVs)
    OUT/<DS>/features/<feature_dir>/
        lowshot_format.json                    layout, feature family, dtypes, class names, per-stage
                                               counts, manifest (file -> bytes); written last
        <stage>/audio.npy, video.npy           dense [N, D] float32, or temporal flat [sum T, D] (source dtype)
        <stage>/audio_lengths.npy, video_lengths.npy   temporal only: [N] int64 steps per video
        <stage>/labels.npy                     [N] int64 class index (code-point order of all_class.txt)
        <stage>/video_ids.npy                  [N] unicode ids
        text/<released stem>.safetensors       every class-embedding dict of text/ (name -> float32[D])

The converter streams class file by class file: a first pass sizes every stage (h5 shapes,
or one pickle at a time), then pre-sized ``.npy`` files (header by
``np.lib.format.open_memmap``) are filled in a second pass with plain file writes, so peak
memory is about one class file. Everything is written into a temporary
folder renamed into place at the end (after the optional split check); a re-run verifies the
marker's manifest and is then a no-op, or redoes an output that fails the verification.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowshot.data.av.datasets import FeatureFamily, ModalityFamily, dataset_spec
from lowshot.data.av.embeddings import read_embedding_dict, text_files, write_embedding_dict
from lowshot.data.av.featureset import STAGES, FeatureSet, SequenceStore
from lowshot.data.av.h5 import read_h5_class_file
from lowshot.data.av.source import (
    check_split_classes,
    dataset_dir,
    read_split_features,
)
from lowshot.data.av.splits import ClassIndex, ClassSplit, load_class_split
from lowshot.data.av.tree import ClassFiles, ReleasedFeatureDir, read_class_pair
from lowshot.errors import DataError
from lowshot.utils.io import atomic_write_json, make_temp_dir
from lowshot.utils.paths import resolve_data_root

log = logging.getLogger(__name__)

MARKER = "lowshot_format.json"
FORMAT_NAME = "lowshot-av-features"
FORMAT_VERSION = 1


def is_converted(path: Path) -> bool:
    """True if ``path`` is a feature folder written by :func:`convert_feature_dir`."""
    return (Path(path) / MARKER).is_file()


def _family_to_json(family: FeatureFamily) -> dict[str, dict[str, object]]:
    return {
        m: {"kind": f.kind, "dim": f.dim, "step": f.step}
        for m, f in (("audio", family.audio), ("video", family.video))
    }


def _family_from_json(obj: dict[str, dict[str, object]]) -> FeatureFamily:
    def one(d: dict[str, object]) -> ModalityFamily:
        return ModalityFamily(
            str(d["kind"]), int(d["dim"]), None if d["step"] is None else float(d["step"])
        )  # type: ignore[arg-type]

    return FeatureFamily(one(obj["audio"]), one(obj["video"]))


class ConvertedFeatureDir:
    """Reader of a converted feature folder (memory-mapped).

    Args:
        path: ``<root>/<DS>/features/<feature_dir>`` holding ``lowshot_format.json``.
        classes: class index of the dataset (must equal the one recorded at conversion).
    """

    kind = "converted"

    def __init__(self, path: Path, classes: ClassIndex) -> None:
        self.path = Path(path)
        try:
            self.meta = json.loads((self.path / MARKER).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"{self.path / MARKER}: unreadable ({err})") from None
        if self.meta.get("format") != FORMAT_NAME or self.meta.get("version") != FORMAT_VERSION:
            raise DataError(f"{self.path / MARKER}: not a {FORMAT_NAME} v{FORMAT_VERSION} folder")
        if tuple(self.meta["class_names"]) != classes.names:
            raise DataError(f"{self.path}: converted with other classes than {classes.source}")
        problem = verify_converted(self.path) if "files" in self.meta else None
        if problem:
            raise DataError(
                f"{self.path}: incomplete conversion ({problem}); run `lowshot data convert` again"
            )
        self.layout: str = self.meta["layout"]
        self.family = _family_from_json(self.meta["family"])

    @property
    def text_dir(self) -> Path:
        """The class-embedding folder, ``<path>/text``."""
        return self.path / "text"

    def dtypes(self) -> tuple[str, str]:
        """(audio, video) dtype names of the released features it was converted from."""
        return self.meta["source_dtypes"]["audio"], self.meta["source_dtypes"]["video"]

    def present_classes(self, stage: str) -> set[int]:
        """Class indices of ``stage`` recorded at conversion (empty for an unknown stage)."""
        return set(self.meta["stages"].get(stage, {}).get("classes", []))

    def load(self, stage: str, name: str) -> np.ndarray:
        """``<stage>/<name>.npy`` memory-mapped."""
        path = self.path / stage / f"{name}.npy"
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"missing file {path}") from None
        except ValueError as err:
            raise DataError(f"{path}: not a readable .npy ({err})") from None

    def _modality(self, stage: str, modality: str) -> np.ndarray | SequenceStore:
        block = self.load(stage, modality)
        if self.layout != "temporal":
            return block
        lengths = np.asarray(self.load(stage, f"{modality}_lengths"), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        if len(lengths) and starts[-1] + lengths[-1] != block.shape[0]:
            raise DataError(
                f"{self.path / stage}: {modality} lengths do not add up to the rows of {modality}.npy"
            )
        return SequenceStore([block], np.zeros(len(lengths), np.int32), starts, lengths)

    def read_stage(self, stage: str, keep: np.ndarray | None = None) -> FeatureSet:
        """Stage FeatureSet backed by memmaps (dense rows are copied only when classes are dropped)."""
        labels = np.asarray(self.load(stage, "labels"), dtype=np.int64)
        ids = np.asarray(self.load(stage, "video_ids"))
        fs = FeatureSet(self._modality(stage, "audio"), self._modality(stage, "video"), labels, ids)
        if keep is None or np.isin(labels, keep).all():
            return fs
        return fs.select_classes(np.asarray(keep))


# ----------------------------------------------------------------------------------------
# conversion


@dataclass
class _ClassSize:
    files: ClassFiles
    ids: list[str]
    audio_lengths: np.ndarray
    video_lengths: np.ndarray


def _size_pass(
    tree: ReleasedFeatureDir, stage: str
) -> tuple[list[_ClassSize], np.dtype, np.dtype, str, str]:
    """Sizes (and dtypes) of every class file of a stage, one file at a time."""
    sizes: list[_ClassSize] = []
    a_types: list[np.dtype] = []
    v_types: list[np.dtype] = []
    for files in tree.class_files(stage):
        if tree.layout == "averaged":
            (n, _), a_ids = read_h5_class_file(files.audio, load_data=False)  # type: ignore[misc]
            _, v_ids = read_h5_class_file(files.video, load_data=False)
            if a_ids != v_ids:
                raise DataError(f"{files.audio} and {files.video} list different videos")
            import h5py

            with h5py.File(files.audio, "r") as fa, h5py.File(files.video, "r") as fv:
                a_types.append(fa["data"].dtype)
                v_types.append(fv["data"].dtype)
            ones = np.ones(n, np.int64)
            sizes.append(_ClassSize(files, a_ids, ones, ones))
            continue
        pair = read_class_pair(files, tree.layout, tree.family, tree.trust_pickle)
        a_types.append(np.asarray(pair.audio[0]).dtype)
        v_types.append(np.asarray(pair.video[0]).dtype)
        if tree.layout == "temporal":
            a_len = np.array([len(x) for x in pair.audio], np.int64)
            v_len = np.array([len(x) for x in pair.video], np.int64)
        else:
            a_len = v_len = np.ones(len(pair.video_ids), np.int64)
        sizes.append(_ClassSize(files, pair.video_ids, a_len, v_len))
    if not sizes:
        raise DataError(f"{tree.path}: no feature files for stage '{stage}'")
    return (
        sizes,
        np.result_type(*a_types),
        np.result_type(*v_types),
        str(a_types[0]),
        str(v_types[0]),
    )


class _BlockWriter:
    """Fill a pre-sized ``.npy`` (header from ``np.lib.format.open_memmap``) row block by row
    block with plain file writes, so written pages never accumulate in this process's RSS
    (dirty pages of a writable memmap would, up to the size of the file)."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, int]) -> None:
        header = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        self.offset = int(header.offset)
        del header
        self.path, self.dtype, self.shape = path, np.dtype(dtype), shape
        self.row = 0
        self._fh = open(path, "r+b")  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> _BlockWriter:
        return self

    def append(self, block: np.ndarray) -> None:
        """Write ``[n, D]`` rows after the previous ones (cast to the file's dtype)."""
        if self.row + len(block) > self.shape[0]:
            raise DataError(f"{self.path}: more rows than sized in the first pass")
        self._fh.seek(self.offset + self.row * self.shape[1] * self.dtype.itemsize)
        self._fh.write(memoryview(np.ascontiguousarray(block, dtype=self.dtype)).cast("B"))
        self.row += len(block)

    def __exit__(self, *exc: object) -> None:
        self._fh.close()
        if exc[0] is None and self.row != self.shape[0]:
            raise DataError(f"{self.path}: {self.row} rows written, {self.shape[0]} sized")


def _convert_stage(tree: ReleasedFeatureDir, stage: str, out: Path) -> dict[str, object]:
    sizes, a_dtype, v_dtype, a_src, v_src = _size_pass(tree, stage)
    temporal = tree.layout == "temporal"
    if not temporal:
        a_dtype = v_dtype = np.dtype(np.float32)
    out.mkdir(parents=True)
    fam = tree.family
    a_rows = int(sum(s.audio_lengths.sum() for s in sizes))
    v_rows = int(sum(s.video_lengths.sum() for s in sizes))
    with (
        _BlockWriter(out / "audio.npy", a_dtype, (a_rows, fam.audio.dim)) as audio,
        _BlockWriter(out / "video.npy", v_dtype, (v_rows, fam.video.dim)) as video,
    ):
        for size in sizes:
            pair = read_class_pair(size.files, tree.layout, fam, tree.trust_pickle)
            if pair.video_ids != size.ids:
                raise DataError(f"{size.files.audio} changed during conversion")
            audio.append(np.concatenate(pair.audio) if temporal else pair.audio)
            video.append(np.concatenate(pair.video) if temporal else pair.video)
    labels = np.concatenate([np.full(len(s.ids), s.files.class_index, np.int64) for s in sizes])
    np.save(out / "labels.npy", labels)
    np.save(out / "video_ids.npy", np.array([v for s in sizes for v in s.ids], dtype=str))
    if temporal:
        np.save(out / "audio_lengths.npy", np.concatenate([s.audio_lengths for s in sizes]))
        np.save(out / "video_lengths.npy", np.concatenate([s.video_lengths for s in sizes]))
    return {
        "videos": len(labels),
        "audio_rows": a_rows,
        "video_rows": v_rows,
        "classes": [s.files.class_index for s in sizes],
        "source_dtypes": [a_src, v_src],
    }


def _copy_class_split(src: Path, dst: Path) -> None:
    """Copy the .txt/.csv files of ``class-split/`` (atomically; identical copy -> no-op)."""
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix in (".txt", ".csv"))
    if dst.is_dir():
        for p in files:
            other = dst / p.relative_to(src)
            if not other.is_file() or other.read_bytes() != p.read_bytes():
                raise DataError(
                    f"{dst} exists and differs from {src} ({p.relative_to(src)}); choose another output root"
                )
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(dst.parent, ".class-split.")
    try:
        for p in files:
            target = tmp / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
        tmp.rename(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _manifest(folder: Path) -> dict[str, int]:
    """Relative path -> size in bytes of every file under ``folder`` (the marker excluded)."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def verify_converted(path: Path) -> str | None:
    """Why ``path`` is not a complete conversion (None if it is).

    Complete means: the marker (written last, atomically) is a readable
    ``lowshot-av-features`` record and every file of its manifest is present with the
    recorded size (other files are ignored).
    """
    try:
        meta = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        return f"unreadable {MARKER} ({err})"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        return f"{MARKER} is not a {FORMAT_NAME} record"
    if not isinstance(meta.get("files"), dict):
        return f"{MARKER} has no file manifest (written by an older lowshot)"
    have = _manifest(Path(path))
    for name, size in meta["files"].items():
        if name not in have:
            return f"{name} is missing"
        if have[name] != size:
            return f"{name} has {have[name]} bytes, {size} were written"
    return None


def _discard(path: Path) -> None:
    """Remove a folder this converter wrote (renamed aside first, so a crash leaves no half)."""
    aside = path.with_name(f".{path.name}.discard")
    shutil.rmtree(aside, ignore_errors=True)
    path.rename(aside)
    shutil.rmtree(aside)


def _check_split(final: Path, class_split: ClassSplit, split: str) -> None:
    """Load ``split`` from a converted folder (DataError naming the folder if it does not)."""
    try:
        read_split_features(
            ConvertedFeatureDir(final, class_split.classes), class_split, split, final
        )
    except DataError as err:
        raise DataError(f"split '{split}' does not load from the converted tree: {err}") from None


def convert_feature_dir(
    src_root: str | Path,
    dataset: str,
    feature_dir: str,
    out_root: str | Path,
    trust_pickle: bool = False,
    split: str | None = None,
) -> Path:
    """Convert one released feature folder (and its class-split tree) to the safe format.

    The output is complete exactly when its marker (with a manifest of every file and its
    size) is present and matches: the marker is written last and the folder is renamed into
    place only after the optional ``split`` check passed. A re-run verifies a completed
    output (and ``split``) and returns it; an output of this converter that fails the
    verification, and temporary folders of interrupted runs, are removed and the conversion
    is redone.

    Args:
        src_root: data root of the released tree.
        dataset: ``UCF`` | ``ActivityNet`` | ``VGGSound``.
        feature_dir: folder under ``<src_root>/<DS>/features/``.
        out_root: data root of the converted tree (``<out_root>/<DS>/...`` is written).
        trust_pickle: allow the full unpickler for a pickle the restricted one refuses.
        split: if given, check that this split loads (before completing; again on a re-run).

    Returns:
        The converted feature folder (unchanged if it was already complete).

    Raises:
        DataError: unreadable source, a ``split`` that does not load, or an existing output
            folder that this converter did not write.
    """
    spec = dataset_spec(dataset)
    out_ds = Path(out_root) / spec.name
    final = out_ds / "features" / feature_dir
    if (final / MARKER).is_file():
        problem = verify_converted(final)
        if problem is None:
            if split is not None:
                _check_split(final, load_class_split(out_ds / "class-split", spec), split)
            return final
        log.warning("%s: incomplete conversion (%s); converting again", final, problem)
        _discard(final)
    elif final.exists():
        raise DataError(
            f"{final} exists but is not a completed conversion; remove it or choose another output root"
        )
    for stale in final.parent.glob(f".{final.name}.*") if final.parent.is_dir() else []:
        log.warning("removing %s, left by an interrupted conversion", stale)
        shutil.rmtree(stale, ignore_errors=True)
    src_ds = dataset_dir(resolve_data_root(src_root), spec)
    class_split = load_class_split(src_ds / "class-split", spec)
    tree = ReleasedFeatureDir(src_ds / "features" / feature_dir, class_split.classes, trust_pickle)
    if split is not None:  # cheap file-listing check before converting anything
        check_split_classes(
            lambda st: {f.class_index for f in tree.class_files(st)}, class_split, split, tree.path
        )
    known, others = text_files(tree.text_dir, spec)
    if others:
        log.warning(
            "%s: not class-embedding files of %s, not converted: %s",
            tree.text_dir,
            spec.name,
            [p.name for p in others],
        )
    tables = {p.stem: read_embedding_dict(p, trust_pickle) for p in known}
    _copy_class_split(src_ds / "class-split", out_ds / "class-split")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(final.parent, f".{final.name}.")
    try:
        stages = {}
        for stage in STAGES:
            if (tree.path / "audio" / stage).is_dir():
                stages[stage] = _convert_stage(tree, stage, tmp / stage)
        if not stages:
            raise DataError(f"{tree.path}: none of the stage folders {STAGES} found")
        for stem, table in tables.items():
            write_embedding_dict(tmp / "text" / f"{stem}.safetensors", table, pickled=False)
        first = next(iter(stages.values()))["source_dtypes"]
        atomic_write_json(  # last: the completion marker
            tmp / MARKER,
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "dataset": spec.name,
                "feature_dir": feature_dir,
                "layout": tree.layout,
                "family": _family_to_json(tree.family),
                "source_dtypes": {"audio": first[0], "video": first[1]},  # type: ignore[index]
                "class_names": list(class_split.class_names),
                "stages": stages,
                "text": sorted(tables),
                "source": str(tree.path),
                "files": _manifest(tmp),
            },
        )
        if split is not None:
            _check_split(tmp, class_split, split)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
