"""Class-label embedding dictionaries and their attachment to class indices (reference §2.5, §6.1).

Released files (``features/<feature_dir>/text/``) are ``np.save``-d Python dicts
``{name: float32[D]}`` (pickles: read only with trust):

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

from lowshot.data.av_datasets import TEXT_KINDS, AVDatasetSpec, text_file_stem
from lowshot.data.class_split import ClassSplit
from lowshot.data.pickles import require_trust
from lowshot.errors import DataError
from lowshot.utils.io import atomic_path

EmbeddingDict = dict[str, np.ndarray]


def read_embedding_dict(path: Path, trust_pickle: bool = False) -> EmbeddingDict:
    """Read a class-embedding dict (``.npy`` pickled dict, or ``.safetensors``).

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
        require_trust(path, trust_pickle)
        try:
            obj = np.load(path, allow_pickle=True)
            raw = obj.item() if isinstance(obj, np.ndarray) and obj.dtype == object else obj
        except Exception as err:
            raise DataError(
                f"{path}: not a readable embedding dict ({type(err).__name__}: {err})"
            ) from None
        if not isinstance(raw, dict):
            raise DataError(
                f"{path}: expected a pickled dict {{name: vector}}, got {type(raw).__name__}"
            )
    out: EmbeddingDict = {}
    for key, value in raw.items():
        vec = np.asarray(value, dtype=np.float32).reshape(-1)
        out[str(key)] = vec
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
    out = np.zeros((n, dim), np.float32)
    if legacy_text_order:
        values = [table[k] for k in sorted(table)]
        if len(values) < n:
            raise DataError(
                f"{source}: legacy_text_order needs one entry per class ({n}), found {len(values)}"
            )
        return np.stack(values[:n]).astype(np.float32)
    keys = embedding_keys(class_split, kind)
    lower = {k.lower(): k for k in table}
    required_set = {int(c) for c in required}
    mapping = class_split.clip_file if keys is class_split.clip else class_split.mapping_file
    for c in range(n):
        key = keys[c]
        hit = None if key is None else (key if key in table else lower.get(key.lower()))
        if hit is None:
            if c in required_set:
                name = class_split.class_names[c]
                via = f"key '{key}' from {mapping}" if key else f"no row in {mapping}"
                raise DataError(f"class '{name}' has no {kind} embedding in {source} ({via})")
            continue
        out[c] = table[hit]
    return out


def legacy_misaligned(class_split: ClassSplit, table: EmbeddingDict, kind: str) -> np.ndarray:
    """Boolean ``[C]``: classes whose legacy row differs from their by-name row (§6.1 extent)."""
    everything = np.arange(len(class_split.class_names))
    by_name = attach_embeddings(class_split, table, kind, Path("<dict>"), everything)
    legacy = attach_embeddings(
        class_split, table, kind, Path("<dict>"), everything, legacy_text_order=True
    )
    return ~np.all(by_name == legacy, axis=1)
