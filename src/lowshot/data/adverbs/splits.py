"""Split CSVs, antonym files and the vocabulary of the video-adverb benchmarks.

Formats follow ``reference/adverbs.md`` §3-§4:

* split CSVs of ReGaDa (``splits/s3d/{seen,unseen}_compositions/<DATASET>/{train,test}.csv``)
  and AIR's native ``air/{train_df,test_df}.csv`` (column aliases ``seg_id``,
  ``clustered_verb``, ...). Only ``clip_id``, ``clustered_adverb`` and ``clustered_action``
  are read; the ``*_label`` columns are never used as indices (§10.6).
* ``antonyms.csv`` with the header ``adverb,antonym`` (symmetric, one row per adverb).
* The vocabulary is built from train + test rows, adverbs and actions ordered by
  (-count, name); pairs are adverb-major (``pair = adverb * n_actions + action``). The
  adverb order fixes the first-index tie rule of Acc-A (§4).

Every row is kept: duplicate annotations and clips shared by train and test are part of
the benchmark (§10.5).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowshot._registry import did_you_mean
from lowshot.errors import DataError

#: short name -> folder name used by ReGaDa
DATASETS: dict[str, str] = {
    "howto100m": "HowTo100M_Adverbs",
    "air": "AIR",
    "activitynet": "ActivityNet_Adverbs",
    "msrvtt": "MSR-VTT_Adverbs",
    "vatex": "VATEX_Adverbs",
}
#: datasets with an unseen-composition split
UNSEEN_DATASETS = ("vatex", "activitynet", "msrvtt")

_ALIASES = {
    "seg_id": "clip_id",
    "clustered_verb": "clustered_action",
    "verb_pre_mapping": "action",
    "adverb_pre_mapping": "adverb",
    "verb_label": "action_label",
}
_REQUIRED = ("clip_id", "clustered_adverb", "clustered_action")


def dataset_folder(name: str) -> str:
    """``"vatex"`` -> ``"VATEX_Adverbs"``; folder names are accepted unchanged."""
    if name in DATASETS.values():
        return name
    try:
        return DATASETS[name]
    except KeyError:
        known = list(DATASETS) + list(DATASETS.values())
        raise DataError(f"unknown adverb dataset '{name}'{did_you_mean(name, known)}") from None


@dataclass(frozen=True)
class SplitRows:
    """The annotation rows of one split CSV (one row per annotation, duplicates kept).

    Attributes:
        clip_ids: clip id of each row as written in the CSV (str; int-like ids stay strings
            and are resolved against feature keys by the feature store).
        adverbs: ``clustered_adverb`` of each row.
        actions: ``clustered_action`` of each row.
        path: the CSV the rows come from (for error messages).
    """

    clip_ids: tuple[str, ...]
    adverbs: tuple[str, ...]
    actions: tuple[str, ...]
    path: Path

    def __len__(self) -> int:
        return len(self.clip_ids)

    def subset(self, idx: np.ndarray | list[int], suffix: str = "") -> SplitRows:
        """Rows ``idx`` (in that order); ``suffix`` is appended to the path for messages."""
        idx = [int(i) for i in idx]
        return SplitRows(
            tuple(self.clip_ids[i] for i in idx),
            tuple(self.adverbs[i] for i in idx),
            tuple(self.actions[i] for i in idx),
            Path(f"{self.path}{suffix}"),
        )


def read_split_csv(path: str | Path) -> SplitRows:
    """Read a split CSV (ReGaDa or AIR-native columns).

    Raises:
        DataError: missing file, missing required column, empty split or empty label.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty file (no header)") from None
        header = [_ALIASES.get(h.strip(), h.strip()) for h in header]
        missing = [c for c in _REQUIRED if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing} (header: {header})")
        cols = [header.index(c) for c in _REQUIRED]
        ids, advs, acts = [], [], []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                values = [row[c].strip() for c in cols]
            except IndexError:
                raise DataError(f"{path}:{lineno}: row has {len(row)} fields") from None
            if not all(values):
                raise DataError(f"{path}:{lineno}: empty clip_id/adverb/action in {values}")
            ids.append(values[0])
            advs.append(values[1])
            acts.append(values[2])
    if not ids:
        raise DataError(f"{path}: split is empty")
    return SplitRows(tuple(ids), tuple(advs), tuple(acts), path)


def read_antonyms(path: str | Path) -> dict[str, str]:
    """Read ``antonyms.csv`` (``adverb,antonym``) and check that it is symmetric.

    Raises:
        DataError: missing file, bad header, asymmetric or duplicate entries.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"antonym file not found: {path}")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if not rows or [c.strip() for c in rows[0][:2]] != ["adverb", "antonym"]:
        raise DataError(f"{path}: expected the header 'adverb,antonym'")
    out: dict[str, str] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{path}:{lineno}: expected 'adverb,antonym', got {row}")
        adv, ant = row[0].strip(), row[1].strip()
        if adv in out and out[adv] != ant:
            raise DataError(f"{path}:{lineno}: '{adv}' has two antonyms ({out[adv]}, {ant})")
        out[adv] = ant
    for adv, ant in out.items():
        if out.get(ant) != adv:
            raise DataError(
                f"{path}: antonyms not symmetric: {adv}->{ant} but {ant}->{out.get(ant)}"
            )
    return out


def frequency_order(labels: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Distinct labels by descending count, ties by name (pandas' order on every split, §4)."""
    counts = Counter(labels)
    return tuple(sorted(counts, key=lambda k: (-counts[k], k)))


@dataclass(frozen=True)
class Vocabulary:
    """Adverbs, actions and antonyms of a split, in the published order.

    Attributes:
        adverbs: adverb names; index order = tie-break order of Acc-A.
        actions: action names.
        antonyms: adverb -> antonym (may be empty when trained without antonyms).
    """

    adverbs: tuple[str, ...]
    actions: tuple[str, ...]
    antonyms: dict[str, str] = field(default_factory=dict)

    @property
    def n_adverbs(self) -> int:
        """Number of adverbs ``|A|``."""
        return len(self.adverbs)

    @property
    def n_actions(self) -> int:
        """Number of actions ``V``."""
        return len(self.actions)

    @property
    def n_pairs(self) -> int:
        """Number of (adverb, action) pairs, ``|A| * V``."""
        return self.n_adverbs * self.n_actions

    def pair_index(self, adverb_idx: np.ndarray, action_idx: np.ndarray) -> np.ndarray:
        """Adverb-major pair index ``a * n_actions + v``."""
        return np.asarray(adverb_idx) * self.n_actions + np.asarray(action_idx)

    def pairs(self) -> list[tuple[str, str]]:
        """All (adverb, action) pairs in pair-index order."""
        return [(a, v) for a in self.adverbs for v in self.actions]

    def antonym_index(self) -> np.ndarray:
        """``[n_adverbs]`` int64: index of each adverb's antonym.

        Raises:
            DataError: an adverb has no antonym in the vocabulary.
        """
        pos = {a: i for i, a in enumerate(self.adverbs)}
        out = np.empty(self.n_adverbs, dtype=np.int64)
        for i, a in enumerate(self.adverbs):
            ant = self.antonyms.get(a)
            if ant is None or ant not in pos:
                raise DataError(f"adverb '{a}' has no antonym in the vocabulary (antonym: {ant})")
            out[i] = pos[ant]
        return out

    def encode(self, rows: SplitRows) -> tuple[np.ndarray, np.ndarray]:
        """Row labels -> (adverb indices ``[N]``, action indices ``[N]``), int64.

        Raises:
            DataError: an adverb or action of ``rows`` is not in the vocabulary.
        """
        return (
            _encode(rows.adverbs, self.adverbs, "adverb", rows.path),
            _encode(rows.actions, self.actions, "action", rows.path),
        )


def _encode(labels: tuple[str, ...], vocab: tuple[str, ...], kind: str, path: Path) -> np.ndarray:
    pos = {name: i for i, name in enumerate(vocab)}
    out = np.empty(len(labels), dtype=np.int64)
    for i, name in enumerate(labels):
        if name not in pos:
            raise DataError(
                f"{path}: unknown {kind} '{name}' in row {i}{did_you_mean(name, list(vocab))}"
            )
        out[i] = pos[name]
    return out


def build_vocabulary(train: SplitRows, test: SplitRows, antonyms: dict[str, str]) -> Vocabulary:
    """Vocabulary from train + test rows; checks antonyms against the adverbs.

    Raises:
        DataError: an antonym-file adverb is unknown, or a vocabulary adverb lacks an antonym.
    """
    adverbs = frequency_order(train.adverbs + test.adverbs)
    actions = frequency_order(train.actions + test.actions)
    if antonyms:
        unknown = sorted(set(antonyms) - set(adverbs))
        if unknown:
            raise DataError(f"antonym file names adverbs not in the splits: {unknown}")
        lacking = [a for a in adverbs if a not in antonyms]
        if lacking:
            raise DataError(f"adverbs without an antonym in the antonym file: {lacking}")
    return Vocabulary(adverbs, actions, dict(antonyms))


@dataclass(frozen=True)
class AdverbSplit:
    """A benchmark split: rows, vocabulary and where it came from.

    Attributes:
        name: e.g. ``"vatex"`` or ``"vatex_unseen"``.
        train / test: annotation rows.
        vocab: vocabulary built from train + test.
        unseen: True for the unseen-composition splits (features of train and test merged).
        root: folder holding the CSVs.
        unlabelled: rows of ``unlabelled.csv`` (unseen splits, when requested; their adverbs
            are hidden from training, e.g. Pseudo-Adverbs pseudo-labels them).
    """

    name: str
    train: SplitRows
    test: SplitRows
    vocab: Vocabulary
    unseen: bool
    root: Path
    unlabelled: SplitRows | None = None


def split_dir(splits_root: str | Path, dataset: str, unseen: bool = False) -> Path:
    """Folder of a ReGaDa split below ``splits_root`` (which holds ``splits/`` or ``s3d/``).

    Accepts the data root (``.../adverbs``), ``.../splits`` or ``.../splits/s3d``.
    """
    root = Path(splits_root)
    kind = "unseen_compositions" if unseen else "seen_compositions"
    folder = dataset_folder(dataset)
    for base in (root / "splits" / "s3d", root / "s3d", root):
        cand = base / kind / folder
        if cand.is_dir():
            return cand
    raise DataError(f"split folder '{kind}/{folder}' not found below {root}")


def load_split(
    splits_root: str | Path, dataset: str, unseen: bool = False, unlabelled: bool = False
) -> AdverbSplit:
    """Load train/test/antonyms of a ReGaDa split (and ``unlabelled.csv`` when ``unlabelled``).

    Raises:
        DataError: a missing file (``unlabelled.csv`` is only on the unseen splits).
    """
    if unlabelled and not unseen:
        raise DataError("unlabelled.csv exists only on the unseen-composition splits")
    if unseen and dataset_folder(dataset) not in {DATASETS[d] for d in UNSEEN_DATASETS}:
        raise DataError(f"dataset '{dataset}' has no unseen-composition split")
    folder = split_dir(splits_root, dataset, unseen)
    train = read_split_csv(folder / "train.csv")
    test = read_split_csv(folder / "test.csv")
    antonyms = read_antonyms(folder / "antonyms.csv")
    short = next((k for k, v in DATASETS.items() if v == dataset_folder(dataset)), dataset)
    name = f"{short}_unseen" if unseen else short
    extra = read_split_csv(folder / "unlabelled.csv") if unlabelled else None
    vocab = build_vocabulary(train, test, antonyms)
    return AdverbSplit(name, train, test, vocab, unseen, folder, extra)


def load_air_native(folder: str | Path) -> AdverbSplit:
    """Load AIR's native layout ``{train_df,test_df,antonyms}.csv`` (air-cvpr23)."""
    folder = Path(folder)
    train = read_split_csv(folder / "train_df.csv")
    test = read_split_csv(folder / "test_df.csv")
    antonyms = read_antonyms(folder / "antonyms.csv")
    return AdverbSplit("air", train, test, build_vocabulary(train, test, antonyms), False, folder)


def overlap_report(split: AdverbSplit) -> dict[str, int]:
    """Counts of duplicate annotations and train/test clip overlap (kept, never removed)."""
    tr, te = Counter(split.train.clip_ids), Counter(split.test.clip_ids)
    return {
        "train_rows": len(split.train),
        "test_rows": len(split.test),
        "train_duplicate_rows": sum(c - 1 for c in tr.values()),
        "test_duplicate_rows": sum(c - 1 for c in te.values()),
        "clips_in_train_and_test": len(set(tr) & set(te)),
    }
