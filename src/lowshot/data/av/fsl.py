"""The audio-visual GFSL benchmarks VGGSound-FSL, UCF-FSL and ActivityNet-FSL (thesis ch. 4, Table 4.1).

Class partition (reference §2.3, inferred from the counts of Table 4.1 and checked by a test
on the released class-split files): B1 = ``stage_1_train``, N1 = ``stage_1_val_unseen``,
N2 = ``cls`` ``stage_2_test_unseen``; stage-2 base classes are B1 ∪ N1. The k novel training
videos per class are taken out of the val-unseen (N1) / test-unseen (N2) videos, so
Val_N = val-unseen minus the shots and Test_N = test-unseen minus the shots;
B2 = B1 ∪ N1 ∪ Val_B ∪ Val_N (the four stage-1 folders).

Two sources give the same :class:`GFSLBenchmark`:

* the released k-shot archives (reference §2.6 (c))::

      <root>/<DS>/class-split/<k>-shot/stage_{1,2}_{base,novel}_train.txt, stage_1_val_{seen,unseen}.txt,
                                       stage_2_test_{seen,unseen}.txt
      <root>/<DS>/features/<k>-shot/{audio,video}/<folder>/<Class>.pkl,  .../text/*.npy

  read by :func:`load_kshot_benchmark` (class lists and counts checked against Table 4.1,
  every mismatch reported);
* draws generated from the GZSL ``cls`` videos, deterministic from a seed
  (:func:`draw_novel_shots`, :func:`write_draw_files`); :func:`write_kshot_layout` writes
  them in the released layout (``lowshot data synth --kshot``).

Folders (released names): one stage-1 draw, three stage-2 draws (suffixes ``""``, ``_1``, ``_2``).
"""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowshot.data.av.datasets import AVDatasetSpec, dataset_spec
from lowshot.data.av.embeddings import attach_embeddings, find_embedding_file, read_embedding_dict
from lowshot.data.av.featureset import FeatureSet, GZSLBenchmark
from lowshot.data.av.pickles import write_pickle_class_file
from lowshot.data.av.source import dataset_dir
from lowshot.data.av.splits import ClassIndex, ClassSplit, read_class_list, read_lines
from lowshot.data.av.tree import ReleasedFeatureDir
from lowshot.errors import DataError
from lowshot.utils.io import atomic_write_text
from lowshot.utils.paths import resolve_data_root

log = logging.getLogger(__name__)

#: shots of the released archives (and of every thesis table)
SHOTS = (1, 5, 10, 20)
#: suffixes of the three fixed stage-2 draws
DRAW_SUFFIXES = ("", "_1", "_2")
#: stage-1 folders; their union is the stage-2 base training set B2
STAGE_1_FOLDERS = ("stage_1_train_base", "stage_1_train_novel", "stage_1_val_seen", "stage_1_val_novel")
#: class-list files of a released ``class-split/<k>-shot/`` folder
KSHOT_LISTS = (
    "stage_1_base_train", "stage_1_novel_train", "stage_1_val_seen", "stage_1_val_unseen",
    "stage_2_base_train", "stage_2_novel_train", "stage_2_test_seen", "stage_2_test_unseen",
)  # fmt: skip

#: thesis Table 4.1 (5-shot): classes all/B1/N1/N2; stage-1 videos B1/N1/Val_B/Val_N; stage-2 B2/N2/Test_B/Test_N
TABLE_4_1: dict[str, dict[str, tuple[int, int, int, int]]] = {
    "VGGSound": {"classes": (271, 138, 69, 64), "stage_1": (70351, 345, 7817, 2757), "stage_2": (81270, 320, 9032, 2880)},
    "UCF": {"classes": (48, 30, 12, 6), "stage_1": (3174, 60, 353, 1407), "stage_2": (4994, 30, 555, 815)},
    "ActivityNet": {"classes": (198, 99, 51, 48), "stage_1": (9204, 255, 1023, 4052), "stage_2": (14534, 240, 1615, 3812)},
}  # fmt: skip


def draw_folders(stage: int, what: str) -> tuple[str, ...]:
    """Released folder names of the draws: ``what`` in ``train_novel`` / ``test_novel``."""
    if stage == 1:
        return (f"stage_1_{'train_novel' if what == 'train_novel' else 'val_novel'}",)
    return tuple(f"stage_2_{what}{s}" for s in DRAW_SUFFIXES)


def check_shots(k: int, generated: bool) -> None:
    """``k`` must be a released shot count; other positive ``k`` are allowed for generated draws (warning).

    Raises:
        DataError: ``k < 1``, or ``k`` not in :data:`SHOTS` for released data.
    """
    if k < 1:
        raise DataError(f"shots must be >= 1, got {k}")
    if k not in SHOTS:
        if not generated:
            raise DataError(f"{k}-shot: the released archives have k in {SHOTS} only")
        log.warning("%d-shot draws are not comparable to the thesis tables (k in %s)", k, SHOTS)


@dataclass(frozen=True)
class GFSLPartition:
    """Class partition of one GFSL benchmark (sorted global class indices).

    Attributes:
        base: B1 (stage-1 base classes). novel_1: N1 (stage-1 novel). novel_2: N2 (stage-2 novel).
    """

    base: np.ndarray
    novel_1: np.ndarray
    novel_2: np.ndarray

    def __post_init__(self) -> None:
        for a, b in ((self.base, self.novel_1), (self.base, self.novel_2), (self.novel_1, self.novel_2)):
            if np.intersect1d(a, b).size:
                raise DataError("GFSL partition: base / novel class lists overlap")

    @property
    def base_2(self) -> np.ndarray:
        """Stage-2 base classes B1 ∪ N1."""
        return np.union1d(self.base, self.novel_1)

    @property
    def classes(self) -> np.ndarray:
        """All classes of the benchmark B1 ∪ N1 ∪ N2."""
        return np.union1d(self.base_2, self.novel_2)

    def stage(self, stage: int) -> tuple[np.ndarray, np.ndarray]:
        """(base, novel) classes of ``stage``."""
        return (self.base, self.novel_1) if stage == 1 else (self.base_2, self.novel_2)


def gfsl_partition(class_split: ClassSplit) -> GFSLPartition:
    """The partition of Table 4.1 from the GZSL ``cls`` class lists (B1, N1, N2)."""
    lists = class_split.split_lists("cls")
    return GFSLPartition(lists["stage_1_train"], lists["stage_1_val_unseen"], lists["stage_2_test_unseen"])


def draw_novel_shots(
    labels: np.ndarray, classes: np.ndarray, k: int, seed: int, draw: int, where: str
) -> np.ndarray:
    """Indices of ``k`` videos per class of ``classes``, drawn without replacement.

    Deterministic in (``seed``, ``draw``, class index): adding a class does not change
    another class's draw.

    Args:
        labels: ``[N]`` class of each candidate video (the val- / test-unseen videos).
        classes: classes to draw for.
        k: shots per class.
        seed / draw: the draw's seed and number.
        where: what the videos are (for the error message).

    Returns:
        ``[len(classes) * k]`` sorted indices into ``labels``.

    Raises:
        DataError: a class with fewer than ``k + 1`` videos (none left to evaluate).
    """
    out = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < k + 1:
            raise DataError(
                f"{where}: class {int(c)} has {len(idx)} video(s); a {k}-shot draw needs at least {k + 1} "
                "(k to train on, one to evaluate)"
            )
        rng = np.random.default_rng([seed, draw, int(c)])
        out.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


@dataclass(frozen=True)
class GFSLBenchmark:
    """One GFSL benchmark in memory, in the released folder structure.

    Attributes:
        name: e.g. ``UCF-FSL/5-shot``.
        class_names: all original class names (index = label).
        class_embeddings: ``[C, D_w]`` float32.
        partition: B1 / N1 / N2.
        shots: k.
        folders: released folder name -> FeatureSet (see the module docstring).
        audio_step / video_step: seconds per step (temporal features).
        metadata: dataset, source, feature kinds.
    """

    name: str
    class_names: tuple[str, ...]
    class_embeddings: np.ndarray
    partition: GFSLPartition
    shots: int
    folders: dict[str, FeatureSet]
    audio_step: float | None = None
    video_step: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_draws(self.folders, self.partition, self.shots, self.name)

    @property
    def num_classes(self) -> int:
        """``C``, all classes of the dataset."""
        return len(self.class_names)

    @property
    def n_draws(self) -> int:
        """Number of stage-2 draws (3 for the released layout)."""
        return len(DRAW_SUFFIXES)

    def _view(self, name: str, train: FeatureSet, train_classes: np.ndarray, evals: dict[str, tuple]) -> GZSLBenchmark:
        splits = {"stage_1_train": train}
        split_classes = {"stage_1_train": train_classes}
        for prefix, (seen, unseen, seen_c, unseen_c) in evals.items():
            splits |= {f"{prefix}_seen": seen, f"{prefix}_unseen": unseen}
            split_classes |= {f"{prefix}_seen": seen_c, f"{prefix}_unseen": unseen_c}
        return GZSLBenchmark(f"{self.name}/{name}", self.class_names, self.class_embeddings, splits,
                             split_classes, self.audio_step, self.video_step, dict(self.metadata))  # fmt: skip

    def phase(self, stage: int, phase: str, draw: int = 0) -> GZSLBenchmark:
        """A phase as a GZSL view: its training set is ``stage_1_train``, its evaluation sets
        are ``stage_1_val_*`` (stage 1) or ``stage_2_test_*`` (stage 2), so the GZSL trainer
        and :func:`~lowshot.protocols.gzsl.evaluate_gzsl` run it unchanged.

        Args:
            stage: 1 or 2.
            phase: ``base`` (base classes only) or ``full`` (base + the novel shots of ``draw``).
            draw: stage-2 draw (0, 1, 2).
        """
        f, p = self.folders, self.partition
        base_cls, novel_cls = p.stage(stage)
        if stage == 1:
            base_train = f["stage_1_train_base"]
            novel_train = f["stage_1_train_novel"]
            ev = {"stage_1_val": (f["stage_1_val_seen"], f["stage_1_val_novel"], base_cls, novel_cls)}
        else:
            base_train = FeatureSet.concat([f[s] for s in STAGE_1_FOLDERS])
            sfx = DRAW_SUFFIXES[draw]
            novel_train = f[f"stage_2_train_novel{sfx}"]
            ev = {"stage_2_test": (f["stage_2_test_seen"], f[f"stage_2_test_novel{sfx}"], base_cls, novel_cls)}
        if phase == "base":
            return self._view(f"stage{stage}_base", base_train, base_cls, ev)
        if phase != "full":
            raise ValueError(f"unknown phase {phase!r}; expected 'base' or 'full'")
        train = FeatureSet.concat([base_train, novel_train])
        return self._view(f"stage{stage}_full_draw{draw}", train, np.union1d(base_cls, novel_cls), ev)


def check_draws(folders: dict[str, FeatureSet], partition: GFSLPartition, k: int, where: str) -> None:
    """Bad-input checks of a k-shot benchmark.

    Raises:
        DataError: a missing folder, a draw with fewer (or more) than ``k`` videos for a
            novel class, or novel training videos that are also evaluation videos.
    """
    needed = STAGE_1_FOLDERS + ("stage_2_test_seen",) + draw_folders(2, "train_novel") + draw_folders(2, "test_novel")
    missing = [n for n in needed if n not in folders]
    if missing:
        raise DataError(f"{where}: missing draw folder '{missing[0]}'")
    pairs = [(1, "stage_1_train_novel", "stage_1_val_novel")] + [
        (2, f"stage_2_train_novel{s}", f"stage_2_test_novel{s}") for s in DRAW_SUFFIXES
    ]
    for stage, train, test in pairs:
        novel = partition.stage(stage)[1]
        counts = {int(c): int(n) for c, n in zip(*np.unique(folders[train].labels, return_counts=True))}
        for c in novel:
            if counts.get(int(c), 0) != k:
                raise DataError(
                    f"{where}/{train}: novel class {int(c)} has {counts.get(int(c), 0)} video(s), expected {k} ({k}-shot)"
                )
        overlap = np.intersect1d(folders[train].video_ids, folders[test].video_ids)
        if overlap.size:
            raise DataError(
                f"{where}/{train}: {overlap.size} novel training video(s) are also evaluation videos of {test}, "
                f"e.g. '{overlap[0]}'"
            )


def gfsl_from_gzsl(bench: GZSLBenchmark, k: int, seed: int = 0, name: str | None = None) -> GFSLBenchmark:
    """A GFSL benchmark with generated draws from a GZSL ``cls`` benchmark (same features).

    One stage-1 draw and three stage-2 draws of ``k`` videos per novel class, deterministic
    from ``seed``; ``k`` outside :data:`SHOTS` warns (not comparable).
    """
    check_shots(k, generated=True)
    s = bench.splits
    part = GFSLPartition(
        bench.split_classes["stage_1_train"], bench.split_classes["stage_1_val_unseen"],
        bench.split_classes["stage_2_test_unseen"],
    )  # fmt: skip
    folders = {"stage_1_train_base": s["stage_1_train"], "stage_1_val_seen": s["stage_1_val_seen"],
               "stage_2_test_seen": s["stage_2_test_seen"]}  # fmt: skip
    for stage, src, train_names, test_names in (
        (1, s["stage_1_val_unseen"], draw_folders(1, "train_novel"), draw_folders(1, "test_novel")),
        (2, s["stage_2_test_unseen"], draw_folders(2, "train_novel"), draw_folders(2, "test_novel")),
    ):
        for d, (tr, te) in enumerate(zip(train_names, test_names)):
            shots = draw_novel_shots(src.labels, part.stage(stage)[1], k, seed, 10 * stage + d, f"{bench.name}/{tr}")
            rest = np.setdiff1d(np.arange(len(src)), shots)
            folders[tr], folders[te] = src.subset(shots), src.subset(rest)
    ds = bench.metadata.get("dataset", bench.name.split("/")[0])
    return GFSLBenchmark(name or f"{ds}-FSL/{k}-shot", bench.class_names, bench.class_embeddings, part, k, folders,
                         bench.audio_step, bench.video_step, {**bench.metadata, "draws": f"generated seed {seed}"})  # fmt: skip


# ----------------------------------------------------------------------------- Table 4.1


def table_4_1_counts(
    partition: GFSLPartition, class_videos: dict[str, dict[int, int]], k: int
) -> dict[str, tuple[int, int, int, int]]:
    """The rows of Table 4.1 implied by a partition and per-class GZSL video counts.

    Args:
        partition: B1 / N1 / N2.
        class_videos: GZSL stage name (``stage_1_train``, ``stage_1_val_seen``,
            ``stage_1_val_unseen``, ``stage_2_test_seen``, ``stage_2_test_unseen``) ->
            class index -> number of videos.
        k: shots.

    Returns:
        ``{"classes": (all, B1, N1, N2), "stage_1": (B1, N1, Val_B, Val_N), "stage_2": (B2, N2, Test_B, Test_N)}``.
    """
    def n(stage: str, classes: np.ndarray) -> int:
        return sum(class_videos[stage].get(int(c), 0) for c in classes)

    p = partition
    s1 = (n("stage_1_train", p.base), k * len(p.novel_1), n("stage_1_val_seen", p.base),
          n("stage_1_val_unseen", p.novel_1) - k * len(p.novel_1))  # fmt: skip
    s2 = (sum(s1), k * len(p.novel_2), n("stage_2_test_seen", p.base_2),
          n("stage_2_test_unseen", p.novel_2) - k * len(p.novel_2))  # fmt: skip
    return {"classes": (len(p.classes), len(p.base), len(p.novel_1), len(p.novel_2)), "stage_1": s1, "stage_2": s2}


def csv_class_videos(class_split_dir: Path, stage: str) -> dict[int, int]:
    """Class index -> number of videos of a GZSL stage, from its ``stage_*.csv`` (``label_code`` column).

    The ``cls_split`` file is read, else the identical ``main_split`` one (reference §2.2:
    the CSVs of the two splits are the same; VGGSound's cls train CSV is not distributed).
    """
    for split in ("cls_split", "main_split"):
        path = Path(class_split_dir) / split / f"{stage}.csv"
        if path.is_file():
            with open(path, encoding="utf-8", newline="") as fh:
                codes = [int(row["label_code"]) for row in csv.DictReader(fh)]
            values, counts = np.unique(np.asarray(codes, np.int64), return_counts=True)
            return {int(v): int(n) for v, n in zip(values, counts)}
    raise DataError(f"missing file {Path(class_split_dir) / 'cls_split' / f'{stage}.csv'}")


def table_4_1_mismatches(dataset: str, counts: dict[str, tuple[int, int, int, int]], k: int) -> list[str]:
    """Every entry of ``counts`` that differs from Table 4.1 (class counts for any k; video counts at k = 5)."""
    ref = TABLE_4_1[dataset_spec(dataset).name]
    names = {"classes": ("all", "B1", "N1", "N2"), "stage_1": ("B1", "N1", "Val_B", "Val_N"),
             "stage_2": ("B2", "N2", "Test_B", "Test_N")}  # fmt: skip
    out = []
    for row, labels in names.items():
        if row != "classes" and k != 5:
            continue
        for label, got, want in zip(labels, counts[row], ref[row]):
            if got != want:
                out.append(f"{dataset} {row} {label}: {got}, Table 4.1 says {want}")
    return out


# ----------------------------------------------------------------------------- released k-shot archives


def read_kshot_lists(folder: Path, classes: ClassIndex) -> dict[str, np.ndarray]:
    """The eight class lists of a released ``class-split/<k>-shot/`` folder."""
    if not folder.is_dir():
        raise DataError(f"missing k-shot class-split folder {folder}")
    return {name: read_class_list(folder / f"{name}.txt", classes) for name in KSHOT_LISTS}


def partition_from_kshot_lists(lists: dict[str, np.ndarray], where: Path) -> GFSLPartition:
    """B1, N1, N2 of the released lists, checking that they agree with each other.

    Raises:
        DataError: stage-2 base classes are not B1 ∪ N1, or the val/test lists disagree.
    """
    part = GFSLPartition(lists["stage_1_base_train"], lists["stage_1_novel_train"], lists["stage_2_novel_train"])
    checks = (
        ("stage_2_base_train", part.base_2), ("stage_1_val_seen", part.base),
        ("stage_1_val_unseen", part.novel_1), ("stage_2_test_seen", part.base_2),
        ("stage_2_test_unseen", part.novel_2),
    )  # fmt: skip
    for name, want in checks:
        if not np.array_equal(lists[name], want):
            raise DataError(f"{where}/{name}.txt: {len(lists[name])} classes disagree with the base/novel lists")
    return part


def _embeddings(class_split: ClassSplit, text_dir: Path, text: Sequence[str], spec: AVDatasetSpec,
                required: np.ndarray, trust_pickle: bool, legacy_text_order: bool) -> np.ndarray:  # fmt: skip
    rows = []
    for kind in text:
        path = find_embedding_file(text_dir, kind, spec)
        table = read_embedding_dict(path, trust_pickle)
        rows.append(attach_embeddings(class_split, table, kind, path, required, legacy_text_order))
    return np.concatenate(rows, axis=1)


def load_kshot_benchmark(
    root: str | Path | None,
    dataset: str,
    k: int,
    text: Sequence[str] = ("fasttext",),
    trust_pickle: bool = False,
    legacy_text_order: bool = False,
    check_table: bool = True,
) -> GFSLBenchmark:
    """Read a released k-shot tree (reference §2.6 (c)); mismatches with Table 4.1 are logged
    (``check_table=False`` skips that, for synthetic trees of another size).

    Raises:
        DataError: k not released, missing folders/lists, bad draws (see :func:`check_draws`).
    """
    from lowshot.data.av.splits import load_class_split

    check_shots(k, generated=False)
    spec = dataset_spec(dataset)
    ds_dir = dataset_dir(resolve_data_root(root), spec)
    class_split = load_class_split(ds_dir / "class-split", spec)
    list_dir = ds_dir / "class-split" / f"{k}-shot"
    part = partition_from_kshot_lists(read_kshot_lists(list_dir, class_split.classes), list_dir)
    feat = ReleasedFeatureDir(ds_dir / "features" / f"{k}-shot", class_split.classes, trust_pickle)
    folders = {}
    for name in (STAGE_1_FOLDERS + ("stage_2_test_seen",) + draw_folders(2, "train_novel")
                 + draw_folders(2, "test_novel")):  # fmt: skip
        if not (feat.path / "audio" / name).is_dir():
            raise DataError(f"missing draw folder {feat.path / 'audio' / name}")
        folders[name] = feat.read_stage(name, part.classes)
    counts = {
        "classes": (len(part.classes), len(part.base), len(part.novel_1), len(part.novel_2)),
        "stage_1": tuple(len(folders[s]) for s in STAGE_1_FOLDERS),
        "stage_2": (sum(len(folders[s]) for s in STAGE_1_FOLDERS), len(folders["stage_2_train_novel"]),
                    len(folders["stage_2_test_seen"]), len(folders["stage_2_test_novel"])),
    }  # fmt: skip
    for line in table_4_1_mismatches(spec.name, counts, k) if check_table else []:
        log.warning("%s: %s", feat.path, line)
    emb = _embeddings(class_split, feat.text_dir, text, spec, part.classes, trust_pickle, legacy_text_order)
    meta = {"dataset": spec.name, "source": "released k-shot", "audio_kind": feat.family.audio.kind,
            "video_kind": feat.family.video.kind, "layout": feat.layout}  # fmt: skip
    return GFSLBenchmark(f"{spec.name}-FSL/{k}-shot", class_split.class_names, emb, part, k, folders,
                         feat.family.audio.step, feat.family.video.step, meta)  # fmt: skip


# ----------------------------------------------------------------------------- writing


def write_draw_files(out: Path, bench: GFSLBenchmark) -> None:
    """Split files of a benchmark's draws: the eight class lists and, per draw folder, a
    ``<folder>.csv`` (``filename,label``) of its videos, under ``out`` (a ``<k>-shot`` folder)."""
    names, p = bench.class_names, bench.partition
    lists = {
        "stage_1_base_train": p.base, "stage_1_novel_train": p.novel_1, "stage_1_val_seen": p.base,
        "stage_1_val_unseen": p.novel_1, "stage_2_base_train": p.base_2, "stage_2_novel_train": p.novel_2,
        "stage_2_test_seen": p.base_2, "stage_2_test_unseen": p.novel_2,
    }  # fmt: skip
    for name, classes in lists.items():
        atomic_write_text(out / f"{name}.txt", "".join(names[c] + "\n" for c in classes))
    for folder in draw_folders(1, "train_novel") + draw_folders(2, "train_novel"):
        fs = bench.folders[folder]
        rows = "".join(f"{_csv_field(v)},{_csv_field(names[c])}\n" for v, c in zip(fs.video_ids, fs.labels))
        atomic_write_text(out / f"{folder}.csv", "filename,label\n" + rows)


def _csv_field(text: str) -> str:
    return f'"{text}"' if ("," in text or '"' in text) else text


def read_draw_file(path: Path) -> list[str]:
    """Video ids of a ``<folder>.csv`` written by :func:`write_draw_files`."""
    lines = read_lines(path)
    return [row[0] for row in csv.reader(lines[1:])]


def write_kshot_layout(root: Path, dataset: str, bench: GFSLBenchmark) -> Path:
    """Write ``bench`` in the released k-shot layout under ``<root>/<DS>/`` (class lists,
    per-class pickles of every folder, the text dicts copied from the folder of ``bench.metadata["text_files"]``).

    Returns:
        The feature folder ``<root>/<DS>/features/<k>-shot``.
    """
    spec = dataset_spec(dataset)
    ds_dir = Path(root) / spec.name
    feat = ds_dir / "features" / f"{bench.shots}-shot"
    write_draw_files(ds_dir / "class-split" / f"{bench.shots}-shot", bench)
    for name, fs in bench.folders.items():
        for c in np.unique(fs.labels):
            idx = np.flatnonzero(fs.labels == c)
            ids = [str(v) for v in fs.video_ids[idx]]
            for modality, store in (("audio", fs.audio), ("video", fs.video)):
                feats = [np.asarray(store[i]) for i in idx]
                write_pickle_class_file(feat / modality / name / f"{bench.class_names[c]}.pkl", feats, ids)
    text_dir = Path(bench.metadata["text_files"].split(",")[0]).parent
    (feat / "text").mkdir(parents=True, exist_ok=True)
    for path in text_dir.iterdir():
        shutil.copyfile(path, feat / "text" / path.name)
    return feat


def kshot_synthetic_size(dataset: str, k: int, size: float, seed: int = 0) -> float:
    """The smallest synthetic size >= ``size`` (doubling) whose novel classes have >= ``k + 1`` videos."""
    from lowshot.data.av.synth import make_plan

    spec = dataset_spec(dataset)
    while True:
        plan = make_plan("cls_temporal", spec.name, seed, size)
        lists = plan.class_split.split_lists("cls")
        least = min(int(plan.counts["stage_1_val_unseen"][lists["stage_1_val_unseen"]].min()),
                    int(plan.counts["stage_2_test_unseen"][lists["stage_2_test_unseen"]].min()))  # fmt: skip
        if least >= k + 1 or size >= 1.0:
            return size
        size = min(1.0, 2 * size)


def write_synthetic_kshot(out_root: str | Path, dataset: str = "UCF", k: int = 5, seed: int = 0,
                          size: float = 0.05) -> Path:  # fmt: skip
    """A synthetic benchmark in the released k-shot layout under ``out_root``.

    A ``cls_temporal`` GZSL tree is generated under ``<out_root>/.gzsl_source`` (``size``
    raised until every novel class has ``k + 1`` videos), ``k`` shots are drawn from it
    (seed ``seed``) and written as released; re-running is a no-op.

    Returns:
        The feature folder ``<out_root>/<DS>/features/<k>-shot``.
    """
    from lowshot.data.av.gzsl import load_gzsl_benchmark
    from lowshot.data.av.synth import write_synthetic

    spec = dataset_spec(dataset)
    out_root = Path(out_root)
    feat = out_root / spec.name / "features" / f"{k}-shot"
    if feat.is_dir():
        return feat
    src = out_root / ".gzsl_source"
    size = kshot_synthetic_size(spec.name, k, size, seed)
    write_synthetic(src, preset="cls_temporal", dataset=spec.name, seed=seed, size=size)
    gzsl = load_gzsl_benchmark(src, spec.name, "cls_features_non_averaged", "cls", trust_pickle=True)
    if not (out_root / spec.name / "class-split").is_dir():
        shutil.copytree(src / spec.name / "class-split", out_root / spec.name / "class-split")
    return write_kshot_layout(out_root, spec.name, gfsl_from_gzsl(gzsl, k, seed))


__all__ = [
    "DRAW_SUFFIXES", "SHOTS", "STAGE_1_FOLDERS", "TABLE_4_1", "GFSLBenchmark", "GFSLPartition",
    "check_draws", "check_shots", "draw_novel_shots", "gfsl_from_gzsl", "gfsl_partition",
    "load_kshot_benchmark", "table_4_1_counts", "table_4_1_mismatches", "write_draw_files",
    "write_kshot_layout", "write_synthetic_kshot",
]  # fmt: skip
