"""Generated parity data in the released layout (``lowshot data synth`` with a real split).

The class structure is the real one (``<shared>/av_gzsl/<DS>/class-split``) and the class
semantics are the real fastText class-name vectors, so zero-shot transfer is learnable the
way it is on the real benchmark: the features of every class, seen or unseen, are driven by
the same map of its class-name vector.

GFSL (AV-Diff): :func:`write_parity_kshot_data` draws k shots from such a GZSL ``cls_temporal``
tree and writes the released k-shot layout (``class-split/<k>-shot``, ``features/<k>-shot``).

Two key variants of the class-embedding dict:

* ``released``: the dict keys are the released ``manual`` names. The published code attaches
  rows by sorted key (reference §6.1), so most classes get another class's vector;
* ``aligned``: ``manual`` names (CSV and dict keys) are renamed to the original class names, so
  the sorted-key rows of the published code are the right ones. lowshot attaches by name and
  reads the same vectors in both variants.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from lowshot.data.av.datasets import dataset_spec, text_file_stem
from lowshot.data.av.embeddings import read_embedding_dict, write_embedding_dict
from lowshot.data.av.synth import get_preset, write_synthetic

KEYS = ("released", "aligned")
EMBEDDING_FILES = {"UCF": "ucf", "ActivityNet": "activity", "VGGSound": "vggsound"}


def shared_files(shared: Path, dataset: str) -> tuple[Path, Path]:
    """(class-split folder, fastText dict) of a dataset under ``<shared>/av_gzsl``."""
    split = shared / "av_gzsl" / dataset / "class-split"
    emb = shared / "av_gzsl" / "class_embeddings" / f"word_embeddings_{EMBEDDING_FILES[dataset]}_normed.npy"
    for path in (split, emb):
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing (the shared benchmark-definition files)")
    return split, emb


def write_parity_data(
    out_root: Path,
    shared: Path,
    dataset: str = "UCF",
    preset: str = "main_averaged",
    size: float = 0.2,
    seed: int = 0,
    keys: str = "aligned",
) -> Path:
    """Write ``<out_root>/<dataset>/{class-split,features/<feature_dir>}``; return the data root.

    The tree is generated in a temporary sibling folder and renamed into place when complete,
    so concurrent harness processes never see (or write into) a half-written tree.

    Args:
        out_root: data root to create (must not hold another benchmark).
        shared: the shared data folder (``../shared/data``).
        dataset: ``UCF`` | ``ActivityNet`` | ``VGGSound``.
        preset: ``lowshot data synth`` preset (the released feature layout).
        size: fraction of the real video counts.
        seed: generator seed.
        keys: ``released`` or ``aligned`` (see the module docstring).
    """
    if keys not in KEYS:
        raise ValueError(f"keys must be one of {KEYS}, got {keys!r}")
    split, emb = shared_files(shared, dataset)
    out_root = Path(out_root)
    if (out_root / dataset).exists():
        return out_root

    def build(tmp: Path) -> None:
        feature_dir = write_synthetic(
            tmp, preset=preset, dataset=dataset, seed=seed, size=size,
            class_split=split, embeddings=emb, trust_pickle=True,
        )  # fmt: skip
        if keys == "aligned":
            _align_keys(tmp / dataset / "class-split", Path(feature_dir), dataset, preset)

    return _build_then_rename(out_root, dataset, build)


def _build_then_rename(out_root: Path, dataset: str, build: Callable[[Path], None]) -> Path:
    """Run ``build`` in a temporary sibling of ``out_root`` and rename it into place (another
    process that finished first wins); return ``out_root``."""
    out_root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_root.name}-", dir=out_root.parent))
    try:
        build(tmp)
        try:
            tmp.rename(out_root)
        except OSError:  # another process finished first
            if not (out_root / dataset).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_root


def write_parity_kshot_data(
    out_root: Path, shared: Path, dataset: str = "UCF", k: int = 5, size: float = 0.2, seed: int = 0,
    keys: str = "aligned",
) -> Path:
    """Write the released k-shot layout ``<out_root>/<dataset>/{class-split,features/<k>-shot}``; return the root.

    The features are the GZSL ``cls_temporal`` tree of :func:`write_parity_data` (written once
    to the sibling ``<out_root>_gzsl``); one stage-1 and three stage-2 draws of ``k`` shots
    per novel class, deterministic from ``seed`` (``lowshot.data.av.fsl.gfsl_from_gzsl``). The
    class-split folder (with ``all_class.txt`` and the name CSVs the published code reads) is
    the GZSL tree's. Built in a temporary sibling and renamed into place, as above.
    """
    from lowshot.data.av.fsl import gfsl_from_gzsl, write_kshot_layout
    from lowshot.data.av.gzsl import load_gzsl_benchmark

    out_root = Path(out_root)
    if (out_root / dataset / "features" / f"{k}-shot").is_dir():
        return out_root
    src = write_parity_data(out_root.with_name(out_root.name + "_gzsl"), shared, dataset, "cls_temporal", size,
                            seed, keys)  # fmt: skip
    gzsl = load_gzsl_benchmark(src, dataset, get_preset("cls_temporal").feature_dir, "cls", trust_pickle=True)

    def build(tmp: Path) -> None:
        shutil.copytree(src / dataset / "class-split", tmp / dataset / "class-split")
        write_kshot_layout(tmp, dataset, gfsl_from_gzsl(gzsl, k, seed))

    return _build_then_rename(out_root, dataset, build)


def _align_keys(split_dir: Path, feature_dir: Path, dataset: str, preset: str) -> None:
    """Rename the manual / CLIP names (mapping CSVs and class-embedding dict keys) to the original names."""
    spec = dataset_spec(dataset)
    mapping = split_dir / spec.mapping_csv
    renamed = _rename_column(mapping, "manual")
    if spec.clip_csv and (split_dir / spec.clip_csv).is_file():  # the keys of the ClipClap dicts
        renamed |= _rename_column(split_dir / spec.clip_csv, "clip_class_name")
    for kind in get_preset(preset).text:
        path = feature_dir / "text" / f"{text_file_stem(kind, spec)}.npy"
        table = read_embedding_dict(path, trust_pickle=True)
        write_embedding_dict(path, {renamed.get(k, k): v for k, v in table.items()})


def _rename_column(path: Path, column: str) -> dict[str, str]:
    """Overwrite ``column`` of a class-name CSV with its ``original`` column; return old -> new."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0].keys())
    renamed = {row[column]: row["original"] for row in rows}
    for row in rows:
        row[column] = row["original"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return renamed
