"""Measure a (released or converted) feature folder, for ``lowshot data inspect``.

Every class file is read: the counts, step lengths, feature dimensions and NaN/inf values
printed are measured, not taken from the expected feature family. Whatever makes the data
unusable (a dimension other than the family's, NaN/inf, audio and video files that list
different videos, a file without its partner, a class of a split without a class
embedding, an unreadable file) is collected as one line per problem in
:attr:`FeatureDirSummary.problems`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowshot.data.av.datasets import TEXT_KINDS, FeatureFamily, dataset_spec, text_file_stem
from lowshot.data.av.embeddings import missing_embeddings, read_embedding_dict, text_files
from lowshot.data.av.featureset import STAGES
from lowshot.data.av.gzsl import dataset_dir
from lowshot.data.av.safe_format import ConvertedFeatureDir, is_converted
from lowshot.data.av.splits import ClassSplit, load_class_split
from lowshot.data.av.tree import (
    MODALITIES,
    ReleasedFeatureDir,
    count_nonfinite,
    different_videos,
    feature_dim,
    match_class_files,
    read_class_file,
)
from lowshot.errors import DataError
from lowshot.utils.paths import resolve_data_root

#: rows per chunk when scanning a memory-mapped block for NaN/inf (~64 MB of float32 4096-d)
_SCAN_BYTES = 1 << 26


@dataclass
class ModalityStats:
    """Measured over one modality of one stage.

    Attributes:
        steps: total time steps (videos for averaged / vector features).
        dims: measured feature dimension -> class files (or blocks) with it.
        nonfinite: NaN/inf values.
        nonfinite_files: files (or blocks) holding them.
    """

    steps: int = 0
    dims: dict[int, list[Path]] = field(default_factory=lambda: defaultdict(list))
    nonfinite: int = 0
    nonfinite_files: list[Path] = field(default_factory=list)

    def add(self, path: Path, dim: int, steps: int, nonfinite: int) -> None:
        """Count one class file (or block): its ``steps``, measured ``dim`` and NaN/inf values."""
        self.steps += steps
        self.dims[dim].append(path)
        if nonfinite:
            self.nonfinite += nonfinite
            self.nonfinite_files.append(path)

    def problems(self, where: Path, expected: int, what: str) -> list[str]:
        """One message per measured dim that differs from ``expected``, and one if NaN/inf were found."""
        out = [
            f"{where}: {len(files)} file(s) with {dim}-d features, but {what} features are "
            f"{expected}-d (e.g. {files[0].name})"
            for dim, files in sorted(self.dims.items())
            if dim != expected
        ]
        if self.nonfinite:
            out.append(
                f"{where}: {self.nonfinite} NaN/inf value(s) in {len(self.nonfinite_files)} "
                f"file(s) (e.g. {self.nonfinite_files[0].name})"
            )
        return out


@dataclass
class StageSummary:
    """One stage folder: classes with files, videos, and the measured audio / video stats."""

    classes: int
    videos: int
    audio: ModalityStats
    video: ModalityStats

    def row(self, stage: str) -> str:
        """The stage's line of the inspect table: classes, videos, mean T and dims per modality, NaN/inf."""
        n = max(self.videos, 1)
        cells = [
            f"{self.audio.steps / n:>9.1f}",
            f"{self.video.steps / n:>9.1f}",
            f"{_dims(self.audio):>9}",
            f"{_dims(self.video):>9}",
            f"{self.audio.nonfinite + self.video.nonfinite:>9}",
        ]
        return f"  {stage:<22}{self.classes:>8}{self.videos:>9}" + "".join(cells)


def _dims(stats: ModalityStats) -> str:
    return ",".join(str(d) for d in sorted(stats.dims)) or "-"


@dataclass
class FeatureDirSummary:
    """What ``lowshot data inspect`` prints; ``problems`` non-empty means the data is unusable."""

    path: Path
    source: str
    layout: str
    family: FeatureFamily
    stages: dict[str, StageSummary]
    class_lists: dict[str, dict[str, int]]
    text: dict[str, str] = field(default_factory=dict)
    n_classes: int = 0
    problems: list[str] = field(default_factory=list)

    def format(self) -> str:
        """The text ``lowshot data inspect`` prints: source, expected family, one row per stage,
        class-list sizes and text files (problems are printed separately).
        """
        fam = self.family
        lines = [
            f"{self.path} ({self.source}, {self.layout})",
            f"  classes in all_class.txt: {self.n_classes}",
            f"  expected: audio: {fam.audio.kind} {fam.audio.dim}-d, step {fam.audio.step or '-'} s;"
            f"  video: {fam.video.kind} {fam.video.dim}-d, step {fam.video.step or '-'} s",
            f"  {'stage':<22}{'classes':>8}{'videos':>9}{'audio T':>9}{'video T':>9}"
            f"{'audio D':>9}{'video D':>9}{'NaN/inf':>9}   (measured)",
        ]
        lines += [s.row(stage) for stage, s in self.stages.items()]
        for split, lists in self.class_lists.items():
            lines.append(
                f"  {split}_split classes: " + ", ".join(f"{k} {v}" for k, v in lists.items())
            )
        lines += [f"  text/{name}: {what}" for name, what in self.text.items()]
        return "\n".join(lines)


def _released_stage(tree: ReleasedFeatureDir, stage: str, problems: list[str]) -> StageSummary:
    pairs, found = match_class_files(tree.path, stage, tree.classes, tree.suffix)
    problems += found
    stats = {m: ModalityStats() for m in MODALITIES}
    videos = 0
    for files in pairs:
        try:
            content = {
                m: read_class_file(getattr(files, m), tree.layout, tree.trust_pickle)
                for m in MODALITIES
            }
        except DataError as err:
            problems.append(str(err))
            continue
        why = different_videos(content["audio"][1], content["video"][1])
        if why:
            problems.append(f"{files.audio} and {files.video} list different videos ({why})")
        videos += len(content["audio"][1])
        for m, (feats, _) in content.items():
            steps = sum(len(f) for f in feats) if tree.layout == "temporal" else len(feats)
            stats[m].add(getattr(files, m), feature_dim(feats), steps, count_nonfinite(feats))
    return StageSummary(len(pairs), videos, stats["audio"], stats["video"])


def _scan_nonfinite(block: np.ndarray) -> int:
    rows = max(1, _SCAN_BYTES // max(1, block.shape[1] * block.dtype.itemsize))
    return sum(count_nonfinite(np.asarray(block[i : i + rows])) for i in range(0, len(block), rows))


def _converted_stage(conv: ConvertedFeatureDir, stage: str, problems: list[str]) -> StageSummary:
    n = len(conv.load(stage, "labels"))
    stats = {m: ModalityStats() for m in MODALITIES}
    for m in MODALITIES:
        block = conv.load(stage, m)
        path = conv.path / stage / f"{m}.npy"
        if block.ndim != 2:
            problems.append(f"{path}: shape {block.shape}, expected [rows, D]")
            continue
        temporal = conv.layout == "temporal"
        items = len(conv.load(stage, f"{m}_lengths")) if temporal else len(block)
        if items != n:
            problems.append(f"{path}: {items} videos but {n} labels")
        stats[m].add(path, int(block.shape[1]), int(block.shape[0]), _scan_nonfinite(block))
    return StageSummary(
        len(conv.meta["stages"][stage]["classes"]), n, stats["audio"], stats["video"]
    )


def _text_summary(
    out: FeatureDirSummary, text_dir: Path, cs: ClassSplit, dataset: str, trust_pickle: bool
) -> None:
    """Measured dims of every class-embedding file, and classes of the splits it lacks."""
    spec = dataset_spec(dataset)
    required = np.unique(np.concatenate([v for ls in cs.lists.values() for v in ls.values()]))
    known, others = text_files(text_dir, spec)
    for p in others:
        out.text[p.name] = f"not a class-embedding file of {spec.name} (not read)"
    for p in known:
        try:
            table = read_embedding_dict(p, trust_pickle)
        except DataError as err:
            out.problems.append(str(err))
            out.text[p.name] = "unreadable"
            continue
        dim = int(next(iter(table.values())).shape[0])
        out.text[p.name] = f"{dim}-d, {len(table)} entries"
        kinds = [k for k in TEXT_KINDS if text_file_stem(k, spec) == p.stem]
        kind = next((k for k in kinds if TEXT_KINDS[k][0] == dim), None)
        if kind is None:
            want = " or ".join(f"{TEXT_KINDS[k][0]}-d ({k})" for k in kinds)
            out.problems.append(f"{p}: {dim}-d vectors, but this file should hold {want}")
        else:
            out.text[p.name] += f" ({kind})"
            missing = missing_embeddings(cs, table, kind, p, required)
            if missing:
                out.problems.append(
                    f"{len(missing)} class(es) of the splits without a {kind} embedding: "
                    + missing[0]
                )


def summarize(
    root: str | Path | None, dataset: str, feature_dir: str, trust_pickle: bool = False
) -> FeatureDirSummary:
    """Measure ``<root>/<DS>/features/<feature_dir>`` (released or converted).

    Raises:
        DataError: the tree cannot be opened at all (no data root, no class split, no
            feature files); problems found in the files are in ``.problems`` instead.
    """
    spec = dataset_spec(dataset)
    ds = dataset_dir(resolve_data_root(root), spec)
    cs = load_class_split(ds / "class-split", spec)
    path = ds / "features" / feature_dir
    lists = {split: {k: len(v) for k, v in ls.items()} for split, ls in cs.lists.items()}
    problems: list[str] = []
    if is_converted(path):
        conv = ConvertedFeatureDir(path, cs.classes)
        stages = {s: _converted_stage(conv, s, problems) for s in conv.meta["stages"]}
        out = FeatureDirSummary(path, "converted", conv.layout, conv.family, stages, lists)
    else:
        tree = ReleasedFeatureDir(path, cs.classes, trust_pickle)
        stages = {
            s: _released_stage(tree, s, problems)
            for s in STAGES
            if (path / "audio" / s).is_dir() or (path / "video" / s).is_dir()
        }
        out = FeatureDirSummary(path, "released", tree.layout, tree.family, stages, lists)
    out.n_classes = len(cs.class_names)
    fam = out.family
    for stage, s in stages.items():
        for m, mod in (("audio", fam.audio), ("video", fam.video)):
            where = path / m / stage if out.source == "released" else path / stage / f"{m}.npy"
            problems += getattr(s, m).problems(where, mod.dim, f"{mod.kind} {m}")
    out.problems = problems
    _text_summary(out, path / "text", cs, dataset, trust_pickle)
    return out
