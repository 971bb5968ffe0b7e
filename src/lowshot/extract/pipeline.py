"""``lowshot extract``: a folder of videos -> features in a released layout or the safe format.

Input: ``INPUT/<stage>/<class>/<video>`` with ``<stage>`` one of the five released stage
folders (``stage_1_train`` ... ``stage_2_test_unseen``); class lists of both splits (``main``
and ``cls``) are what the stage folders hold (``stage_2_train`` = the three stage-1 folders).

Output (``OUT/<DS>/``): ``class-split/`` (``all_class.txt``, the name CSV, ``<split>_split/<list>.txt``)
and ``features/<feature_dir>/`` in one of

* ``averaged``: ``{audio,video}/<stage>/<class>.h5`` (time mean, released AVCA layout);
* ``temporal``: ``{audio,video}/<stage>/<class>.pkl`` of ``[T, D]`` (released TCaF layout);
* ``vector``: ``{audio,video}/<stage>/<class>.pkl`` of ``[D]`` (released ClipClap layout);
* ``--safe``: the pickle-free memory-mapped format (:mod:`lowshot.data.av.safe_format`)
  of any of the three, for encoders whose dimensions are not the released ones;

plus ``text/<released stem>`` class-label embeddings and ``extract.json`` (encoders, skipped
videos). Released layouts are read by family (``main*`` = SeLaVi 512/512, ``cls*`` =
VGGish 128 / C3D 4096, ClipClap vectors = CLAP 1024 / CLIP 512): other dimensions need ``--safe``.

Robustness: every video's features go to the cache ``OUT/.extract_cache/<key>/``
(:mod:`lowshot.extract.cache`: one ``.npz`` per video, or safetensors shards of ``--shard-size``
videos on the Ray path) atomically, so a killed run resumes where it stopped; unusable videos
(unreadable, truncated, no audio, empty) are listed with the reason in ``OUT/extract_summary.json``
and skipped; the feature folder is built in a temporary folder and renamed into place last
(never a half-written output).

Memory: the assembly streams from the cache, one video at a time: the safe format's ``.npy``
files are written row block by row block and the averaged h5 datasets grow per video. Only
the released pickle layouts (temporal / vector ``.pkl``) hold one class file in memory, as a
pickle is written whole.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowshot.data.av.datasets import (
    FAMILIES,
    SPLITS,
    FeatureFamily,
    ModalityFamily,
    dataset_spec,
    text_file_stem,
)
from lowshot.data.av.embeddings import write_embedding_dict
from lowshot.data.av.featureset import CLASS_LISTS, STAGES
from lowshot.data.av.h5 import write_h5_class_file
from lowshot.data.av.pickles import write_pickle_class_file
from lowshot.data.av.safe_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MARKER,
    _family_to_json,
    _manifest,
)
from lowshot.errors import DataError
from lowshot.extract import cache as vcache
from lowshot.extract.base import AVEncoder
from lowshot.extract.media import VIDEO_EXTENSIONS, MediaError, decode_audio, decode_video
from lowshot.utils.io import atomic_write_json, atomic_write_text, make_temp_dir

LAYOUTS = ("averaged", "temporal", "vector")
DEFAULT_DIRS = {"averaged": "cls_features", "temporal": "cls_features_non_averaged", "vector": "cls_features_non_averaged"}
INFO = "extract.json"
SUMMARY = "extract_summary.json"


@dataclass(frozen=True)
class VideoItem:
    """One input video: ``path``, its ``stage`` folder (None outside a stage tree), ``label``, ``vid``."""

    path: Path
    stage: str | None
    label: str
    vid: str

    @property
    def key(self) -> str:
        """Unique key of the item (the same file name may appear in several stages)."""
        return f"{self.stage}/{self.vid}"


def list_videos(paths: Sequence[str | Path]) -> list[Path]:
    """Video files of ``paths`` (files as given; folders searched recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return out


def scan_stage_tree(root: str | Path) -> list[VideoItem]:
    """``root/<stage>/<class>/<video>`` -> items (DataError naming what is missing)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such input folder")
    unknown = [p.name for p in root.iterdir() if p.is_dir() and p.name not in STAGES and not p.name.startswith(".")]
    if unknown:
        raise DataError(f"{root}: expected stage folders {', '.join(STAGES)}; found {', '.join(sorted(unknown))}")
    items = []
    for stage in STAGES:
        if not (root / stage).is_dir():
            raise DataError(f"{root}: missing stage folder {stage}/ (one folder per class inside)")
        for cdir in sorted(p for p in (root / stage).iterdir() if p.is_dir()):
            for f in list_videos([cdir]):
                items.append(VideoItem(f, stage, cdir.name, f"{cdir.name}/{f.stem}"))
        if not any(i.stage == stage for i in items):
            raise DataError(f"{root / stage}: no videos ({', '.join(VIDEO_EXTENSIONS)})")
    return items


def check_family(layout: str, feature_dir: str, audio: AVEncoder, video: AVEncoder) -> None:
    """DataError when a released layout cannot hold these encoders' dimensions."""
    fam = FAMILIES[(layout, "main" if feature_dir.lower().startswith("main") else "cls")]
    for enc, want in ((audio, fam.audio), (video, fam.video)):
        if enc.dim != want.dim:
            raise DataError(
                f"the released '{layout}' layout in '{feature_dir}' holds {want.dim}-d {enc.modality} "
                f"features ({want.kind}); {enc.kind} gives {enc.dim}-d: use --safe (any dimensions)"
            )


def cache_key(spec: dict[str, tuple[str, str | None]], encoders: dict[str, AVEncoder]) -> str:
    """Folder name of a video cache: encoder names, weights (path, size, mtime) and descriptions, hashed."""

    def weights(path: str | None) -> list[object]:
        if not path or not Path(path).exists():
            return [path]
        st = Path(path).stat()
        return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]

    desc = json.dumps({m: [spec[m][0], weights(spec[m][1]), encoders[m].describe()] for m in sorted(encoders)},
                      sort_keys=True)
    return hashlib.sha1(desc.encode()).hexdigest()[:12]


def encode_video(path: Path, encoders: dict[str, AVEncoder]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Decode and encode one video: modality -> ``[T, D]``, and seconds spent per phase."""
    feats, timing = {}, {"decode": 0.0, "encode": 0.0}
    for modality, enc in encoders.items():
        t0 = time.perf_counter()
        stream = decode_audio(path, int(enc.rate)) if modality == "audio" else decode_video(path, enc.rate)
        t1 = time.perf_counter()
        feats[modality] = enc.encode(stream)
        timing["decode"] += t1 - t0
        timing["encode"] += time.perf_counter() - t1
    return feats, timing


@dataclass
class Extraction:
    """Features of the usable videos (item key -> modality -> ``[T, D]``; read from the cache on
    access, see :class:`~lowshot.extract.cache.CachedFeatures`) and the report of the others."""

    features: Mapping[str, dict[str, np.ndarray]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "encode": 0.0})

    def rows(self, key: str, modality: str) -> int:
        """Time steps of one video's ``modality`` (from the cache index when cached)."""
        if isinstance(self.features, vcache.CachedFeatures):
            return self.features.rows(key, modality)
        return len(self.features[key][modality])


def cache_file(cache: Path, item: VideoItem) -> Path:
    """The per-video ``.npz`` of ``item`` in ``cache``."""
    return cache / (vcache.video_id(item.key) + ".npz")


def process_video(item: VideoItem, encoders: dict[str, AVEncoder], file: Path) -> dict[str, float]:
    """Encode one video and write its ``.npz`` atomically (features, or the reason it is unusable).

    Returns:
        Seconds spent decoding / encoding (zeros for an unusable video).
    """
    timing = {"decode": 0.0, "encode": 0.0}
    try:
        feats, timing = encode_video(item.path, encoders)
        payload: dict[str, np.ndarray] = {m: f.astype(np.float32) for m, f in feats.items()}
    except MediaError as err:
        payload = {"reason": np.array(err.reason), "detail": np.array(err.detail)}
    vcache.write_npz(file, payload)
    return timing


_WORKER: dict[str, AVEncoder] = {}


def _worker_init(build: Callable[[], dict[str, AVEncoder]]) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(build())


def _worker_run(item: VideoItem, file: Path) -> dict[str, float]:
    return process_video(item, _WORKER, file)


def extract_all(
    items: Sequence[VideoItem],
    encoders: dict[str, AVEncoder],
    cache: Path,
    progress: bool = True,
    on_video: Callable[[VideoItem], None] | None = None,
    workers: int = 1,
    build: Callable[[], dict[str, AVEncoder]] | None = None,
    ray: str | None = None,
    shard_size: int = 256,
) -> Extraction:
    """Features of every item, from ``cache`` when there, else decoded + encoded and cached atomically.

    Args:
        items: videos.
        encoders: ``{"audio": enc, "video": enc}`` (used in this process when ``workers == 1``).
        cache: folder of per-video ``.npz`` files (created).
        progress: show a tqdm bar with ETA (on stderr).
        on_video: called after each newly encoded video (tests kill a run with it).
        workers: processes encoding videos in parallel (each builds its own encoders, one thread each).
        build: picklable callable returning the encoders (needed when ``workers > 1`` or ``ray``).
        ray: run the Ray Data pipeline (:mod:`lowshot.extract.ray_data`) on this cluster address
            (``local``: a Ray instance on this machine) with ``workers`` encoder actors.
        shard_size: most videos per cache shard written by the Ray path.

    Returns:
        The extraction; its features are read from the cache on access (none held in memory).
    """
    from tqdm import tqdm

    cache.mkdir(parents=True, exist_ok=True)
    res = Extraction()
    index = vcache.scan(cache)
    todo = [i for i in items if vcache.video_id(i.key) not in index]
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="extract", unit="video",
               disable=not progress, dynamic_ncols=True)

    def done(item: VideoItem, timing: dict[str, float]) -> None:
        for k, v in timing.items():
            res.timing[k] += v
        bar.update(1)
        if on_video is not None:
            on_video(item)

    try:
        if ray is not None:
            from lowshot.extract.ray_data import extract_to_cache

            if build is None:
                raise ValueError("ray needs a picklable `build` callable for the encoders")
            extract_to_cache([(i.path, vcache.video_id(i.key)) for i in todo], cache, encoders, build, ray, workers,
                             shard_size, bar.update)
        elif workers > 1 and len(todo) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            if build is None:
                raise ValueError("workers > 1 needs a picklable `build` callable for the encoders")
            with ProcessPoolExecutor(workers, mp.get_context("spawn"), _worker_init, (build,)) as pool:
                futures = {pool.submit(_worker_run, i, cache_file(cache, i)): i for i in todo}
                for f in as_completed(futures):
                    done(futures[f], f.result())
        else:
            for item in todo:
                done(item, process_video(item, encoders, cache_file(cache, item)))
    finally:
        bar.close()
    index = vcache.scan(cache) if todo else index
    usable = {}
    for item in items:
        entry = index[vcache.video_id(item.key)]
        if entry.reason is not None:
            res.skipped.append({"video": str(item.path), "reason": entry.reason[0], "detail": entry.reason[1]})
        else:
            usable[item.key] = entry
    res.features = vcache.CachedFeatures(usable, list(encoders))
    return res


def _stage_classes(items: Sequence[VideoItem], ok: dict[str, object]) -> dict[str, set[str]]:
    return {st: {i.label for i in items if i.stage == st and i.key in ok} for st in STAGES}


def write_class_split(out: Path, dataset: str, classes: list[str], stage_classes: dict[str, set[str]]) -> None:
    """``class-split/`` of the extracted classes (both splits: the stage folders' classes)."""
    spec = dataset_spec(dataset)
    index = {c: i for i, c in enumerate(classes)}
    lists = dict(stage_classes)
    lists["stage_2_train"] = stage_classes["stage_1_train"] | stage_classes["stage_1_val_seen"] | stage_classes["stage_1_val_unseen"]
    tmp = make_temp_dir(out.parent, ".class-split.")
    try:
        atomic_write_text(tmp / "all_class.txt", "".join(c + "\n" for c in classes))
        cat = spec.name == "VGGSound"
        rows = ["original,manual" + (",category" if cat else "")]
        rows += [f'"{c}","{c}"' + (',""' if cat else "") for c in classes]
        atomic_write_text(tmp / spec.mapping_csv, "\n".join(rows) + "\n")
        for split in SPLITS:
            for name in CLASS_LISTS:
                names = sorted(lists[name], key=index.__getitem__)
                atomic_write_text(tmp / f"{split}_split" / f"{name}.txt", "".join(c + "\n" for c in names))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _released_features(tmp: Path, layout: str, items: Sequence[VideoItem], ext: Extraction) -> None:
    for stage in STAGES:
        by_class: dict[str, list[VideoItem]] = {}
        for i in items:
            if i.stage == stage and i.key in ext.features:
                by_class.setdefault(i.label, []).append(i)
        for label, group in by_class.items():
            vids = [i.vid for i in group]
            for modality in ("audio", "video"):
                seqs = (ext.features[i.key][modality] for i in group)  # read one video at a time
                path = tmp / modality / stage / label
                if layout == "averaged":
                    write_h5_class_file(Path(f"{path}.h5"), (s.mean(0) for s in seqs), vids)
                else:  # a pickle is written whole: one class file in memory
                    write_pickle_class_file(Path(f"{path}.pkl"), [s if layout == "temporal" else s.mean(0) for s in seqs], vids)


def _stream_npy(path: Path, shape: tuple[int, int], blocks: Iterable[np.ndarray]) -> None:
    """Write a float32 ``.npy`` of ``shape`` from row blocks (header first, then the blocks in turn)."""
    written = 0
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
                                                  "fortran_order": False, "shape": shape})
        for block in blocks:
            if block.ndim != 2 or block.shape[1] != shape[1]:
                raise DataError(f"{path}: a cached video has features of shape {block.shape}, expected [T, {shape[1]}]")
            fh.write(np.ascontiguousarray(block, "<f4").tobytes())
            written += len(block)
    if written != shape[0]:
        raise DataError(f"{path}: {written} rows written, {shape[0]} expected (the cache changed during assembly?)")


def _safe_features(tmp: Path, layout: str, items: Sequence[VideoItem], ext: Extraction, classes: list[str],
                   dims: dict[str, int]) -> dict[str, object]:
    index = {c: i for i, c in enumerate(classes)}
    stages: dict[str, object] = {}
    for stage in STAGES:
        sel = sorted((index[i.label], i.vid, i.key) for i in items if i.stage == stage and i.key in ext.features)
        out = tmp / stage
        out.mkdir(parents=True)
        rows = {}
        for modality in ("audio", "video"):
            seqs = (ext.features[k][modality] for _, _, k in sel)  # read one video at a time
            if layout == "temporal":
                lengths = np.array([ext.rows(k, modality) for _, _, k in sel], np.int64)
                np.save(out / f"{modality}_lengths.npy", lengths)
                rows[modality] = int(lengths.sum())
                _stream_npy(out / f"{modality}.npy", (rows[modality], dims[modality]), seqs)
            else:
                rows[modality] = len(sel)
                _stream_npy(out / f"{modality}.npy", (len(sel), dims[modality]), (s.mean(0, keepdims=True) for s in seqs))
        np.save(out / "labels.npy", np.array([c for c, _, _ in sel], np.int64))
        np.save(out / "video_ids.npy", np.array([v for _, v, _ in sel], dtype=str))
        stages[stage] = {"videos": len(sel), "audio_rows": rows["audio"], "video_rows": rows["video"],
                         "classes": sorted({c for c, _, _ in sel}), "source_dtypes": ["float32", "float32"]}
    return stages


def family_of(encoders: dict[str, AVEncoder]) -> FeatureFamily:
    """The feature family the encoders produce."""
    a, v = encoders["audio"], encoders["video"]
    return FeatureFamily(ModalityFamily(a.kind, a.dim, a.step), ModalityFamily(v.kind, v.dim, v.step))


def write_output(
    out_root: Path,
    dataset: str,
    feature_dir: str,
    layout: str,
    safe: bool,
    items: Sequence[VideoItem],
    ext: Extraction,
    encoders: dict[str, AVEncoder],
    info: dict[str, object],
    text_tables: dict[str, dict[str, np.ndarray]],
) -> Path:
    """Assemble class-split + feature folder in a temporary folder, renamed into place last.

    Args:
        text_tables: text kind (``fasttext``/``clip``/``clap``) -> class name -> vector.

    Raises:
        DataError: a stage has no usable video left, or the output exists and was not written here.
    """
    spec = dataset_spec(dataset)
    stage_classes = _stage_classes(items, ext.features)
    empty = [s for s, c in stage_classes.items() if not c]
    if empty:
        raise DataError(f"no usable video left in stage(s) {', '.join(empty)} (see {out_root / SUMMARY})")
    classes = sorted(set().union(*stage_classes.values()))
    ds = out_root / spec.name
    final = ds / "features" / feature_dir
    if final.exists() and not (final / INFO).is_file():
        raise DataError(f"{final} exists and was not written by lowshot extract; choose another output")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(final.parent, f".{feature_dir}.")
    try:
        for kind, table in text_tables.items():
            stem = text_file_stem(kind, spec)
            write_embedding_dict(tmp / "text" / (f"{stem}.safetensors" if safe else f"{stem}.npy"),
                                 {c: table[c] for c in classes}, pickled=not safe)
        if safe:
            stages = _safe_features(tmp, layout, items, ext, classes, {m: e.dim for m, e in encoders.items()})
            atomic_write_json(tmp / INFO, info)
            atomic_write_json(tmp / MARKER, {
                "format": FORMAT_NAME, "version": FORMAT_VERSION, "dataset": spec.name, "feature_dir": feature_dir,
                "layout": layout, "family": _family_to_json(family_of(encoders)),
                "source_dtypes": {"audio": "float32", "video": "float32"}, "class_names": classes,
                "stages": stages, "text": sorted(text_tables), "source": "lowshot extract", "files": _manifest(tmp),
            })
        else:
            _released_features(tmp, layout, items, ext)
            atomic_write_json(tmp / INFO, info)
        write_class_split(ds / "class-split", spec.name, classes, stage_classes)
        if final.exists():
            aside = final.with_name(f".{feature_dir}.old")
            shutil.rmtree(aside, ignore_errors=True)
            final.rename(aside)
            tmp.rename(final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_info(feature_dir: Path) -> dict[str, object]:
    """The ``extract.json`` of a feature folder written by ``lowshot extract``."""
    path = Path(feature_dir) / INFO
    if not path.is_file():
        raise DataError(f"{path} not found: the features were not written by `lowshot extract`, "
                        "so the encoders that made them are unknown")
    return json.loads(path.read_text(encoding="utf-8"))
