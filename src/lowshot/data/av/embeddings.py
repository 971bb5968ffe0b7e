"""Class-label embedding dictionaries and their attachment to class indices (reference §2.5, §6.1).

Released files (``features/<feature_dir>/text/``) are ``np.save``-d Python dicts
``{name: float32[D]}`` (pickles, read by the restricted unpickler of
:mod:`lowshot.data.av.pickles`: no code runs, no trust needed):

==========  ====  =====================================================  ================================
kind        D     file                                                   keys
==========  ====  =====================================================  ================================
fasttext    300   ``word_embeddings_{ucf,activity,vggsound}_normed.npy``  ``manual`` names
clip        512   ``word_embeddings_{ucf,activitynet,vggsound}_normed``   UCF ``clip_class_name``, else manual
clap        1024  ``wavcaps_word_embeddings_{...}_normed.npy``            as clip
==========  ====  =====================================================  ================================

The converted (pickle-free) tree stores the same dicts as ``<stem>.safetensors``.

Rows are attached **by class name**: class c -> its manual (or clip) name through the CSV ->
the dict entry. ``legacy_text_order=True`` instead reproduces the upstream defect (§6.1):
row c is the c-th value of the dict in code-point sorted key order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lowshot.data.av.datasets import TEXT_KINDS, AVDatasetSpec, text_file_stem
from lowshot.data.av.pickles import load_npy
from lowshot.data.av.splits import ClassSplit
from lowshot.errors import DataError
from lowshot.utils.io import atomic_path

EmbeddingDict = dict[str, np.ndarray]


def read_embedding_dict(path: Path, trust_pickle: bool = False) -> EmbeddingDict:
    """Read a class-embedding dict (``.npy`` pickled dict, or ``.safetensors``).

    Args:
        path: the file.
        trust_pickle: allow the full unpickler for a ``.npy`` that holds more than
            dicts / arrays / strings (the released files do not).

    Returns:
        name -> ``[D]`` float32 vector.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing class-embedding file {path}")
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            raw = load_file(str(path))
        except Exception as err:
            raise DataError(f"{path}: not a readable safetensors file ({err})") from None
    else:
        obj = load_npy(path, trust_pickle)
        raw = obj.item() if obj.dtype == object and obj.ndim == 0 else obj
        if not isinstance(raw, dict):
            raise DataError(
                f"{path}: expected a pickled dict {{name: vector}}, got {type(raw).__name__}"
            )
    out: EmbeddingDict = {}
    for key, value in raw.items():
        try:
            out[str(key)] = np.asarray(value, dtype=np.float32).reshape(-1)
        except (ValueError, TypeError):
            raise DataError(
                f"{path}: the entry '{key}' is not a numeric vector ({type(value).__name__})"
            ) from None
    if not out:
        raise DataError(f"{path}: empty embedding dict")
    dims = {v.shape[0] for v in out.values()}
    if len(dims) != 1:
        raise DataError(f"{path}: vectors disagree on the dimension: {sorted(dims)}")
    bad = [k for k, v in out.items() if not np.isfinite(v).all()]
    if bad:
        raise DataError(f"{path}: non-finite values in the embedding of '{bad[0]}'")
    return out


def write_embedding_dict(path: Path, table: EmbeddingDict, pickled: bool = True) -> None:
    """Write a dict as the released pickled ``.npy`` (``pickled``) or as ``.safetensors``."""
    path = Path(path)
    clean = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in table.items()}
    with atomic_path(path) as tmp:
        if pickled:
            with open(tmp, "wb") as fh:
                np.save(fh, np.array(clean, dtype=object), allow_pickle=True)
        else:
            from safetensors.numpy import save_file

            save_file(clean, str(tmp))


def find_embedding_file(text_dir: Path, kind: str, spec: AVDatasetSpec) -> Path:
    """The dict file of ``kind`` in ``text_dir``; the pickle-free ``.safetensors`` wins."""
    stem = text_file_stem(kind, spec)
    for suffix in (".safetensors", ".npy"):
        path = Path(text_dir) / f"{stem}{suffix}"
        if path.is_file():
            return path
    have = sorted(p.name for p in Path(text_dir).glob("*")) if Path(text_dir).is_dir() else []
    raise DataError(
        f"no {kind} class embeddings: {Path(text_dir) / stem}.npy not found (text folder holds {have})"
    )


def text_files(text_dir: Path, spec: AVDatasetSpec) -> tuple[list[Path], list[Path]]:
    """(class-embedding files of ``spec`` in ``text_dir``, other files there).

    Only files named like a released dict of some kind (``.npy`` or ``.safetensors``) are
    class-embedding files; nothing else in ``text/`` is ever read.
    """
    stems = {text_file_stem(kind, spec) for kind in TEXT_KINDS}
    files = sorted(Path(text_dir).glob("*")) if Path(text_dir).is_dir() else []
    known = [p for p in files if p.stem in stems and p.suffix in (".npy", ".safetensors")]
    return known, [p for p in files if p not in known]


def embedding_keys(class_split: ClassSplit, kind: str) -> tuple[str | None, ...]:
    """Dict key of every class for ``kind``: clip_class_name where a clip CSV exists
    (UCF ClipClap dicts), else the manual name (reference §2.5)."""
    if kind in ("clip", "clap") and class_split.clip is not None:
        return class_split.clip
    return class_split.manual


def attach_embeddings(
    class_split: ClassSplit,
    table: EmbeddingDict,
    kind: str,
    source: Path,
    required: np.ndarray,
    legacy_text_order: bool = False,
) -> np.ndarray:
    """Rows of ``table`` for every class index.

    Args:
        class_split: class index and name mappings.
        table: name -> ``[D]`` dict.
        kind: ``fasttext`` | ``clip`` | ``clap`` (checked against the dimension).
        source: file of ``table`` (for messages).
        required: class indices that must get an embedding (the classes of the split).
        legacy_text_order: reproduce the §6.1 misalignment (row c = c-th value in sorted key order).

    Returns:
        ``[C, D]`` float32; rows of classes outside ``required`` without an entry are zero.
    """
    dim = next(iter(table.values())).shape[0]
    expected = TEXT_KINDS[kind][0]
    if dim != expected:
        hint = (
            " (a ClipClap CLIP dict? use text=('clip', 'clap'))"
            if kind == "fasttext" and dim == 512
            else ""
        )
        raise DataError(f"{source}: {dim}-d vectors, but {kind} embeddings are {expected}-d{hint}")
    n = len(class_split.class_names)
    if legacy_text_order:
        values = [table[k] for k in sorted(table)]
        if len(values) < n:
            raise DataError(
                f"{source}: legacy_text_order needs one entry per class ({n}), found {len(values)}"
            )
        return np.stack(values[:n]).astype(np.float32)
    missing = missing_embeddings(class_split, table, kind, source, required)
    if missing:
        raise DataError(missing[0])
    out = np.zeros((n, dim), np.float32)
    for c, hit in enumerate(embedding_hits(class_split, table, kind)):
        if hit is not None:
            out[c] = table[hit]
    return out


def embedding_hits(class_split: ClassSplit, table: EmbeddingDict, kind: str) -> list[str | None]:
    """The key of ``table`` that holds each class's embedding (exact, else case-insensitive),
    or None."""
    lower = {k.lower(): k for k in table}
    return [
        None if key is None else (key if key in table else lower.get(key.lower()))
        for key in embedding_keys(class_split, kind)
    ]


def missing_embeddings(
    class_split: ClassSplit, table: EmbeddingDict, kind: str, source: Path, required: np.ndarray
) -> list[str]:
    """One message per class of ``required`` without an entry in ``table``."""
    keys = embedding_keys(class_split, kind)
    mapping = class_split.clip_file if keys is class_split.clip else class_split.mapping_file
    hits = embedding_hits(class_split, table, kind)
    out = []
    for c in sorted({int(c) for c in required}):
        if hits[c] is None:
            via = f"key '{keys[c]}' from {mapping}" if keys[c] else f"no row in {mapping}"
            out.append(
                f"class '{class_split.class_names[c]}' has no {kind} embedding in {source} ({via})"
            )
    return out


def legacy_misaligned(class_split: ClassSplit, table: EmbeddingDict, kind: str) -> np.ndarray:
    """Boolean ``[C]``: classes whose legacy row differs from their by-name row (§6.1 extent)."""
    everything = np.arange(len(class_split.class_names))
    by_name = attach_embeddings(class_split, table, kind, Path("<dict>"), everything)
    legacy = attach_embeddings(
        class_split, table, kind, Path("<dict>"), everything, legacy_text_order=True
    )
    return ~np.all(by_name == legacy, axis=1)
