"""Video-adverb retrieval protocol: data assembly, evaluation, Priors, model selection.

Evaluation (``reference/adverbs.md`` §5): a method gives, for each test row, the scores of
every adverb paired with the row's GT action (``[N, n_adverbs]``) and optionally the
no-action-GT scores (max over actions). Seen splits report mAP W, mAP M and Acc-A;
unseen splits report Acc-A (cls).

Model selection (§7.6, §10.2), recorded with every result and every table row
(:func:`selection_label`):

* ``validation`` (default): the epoch is selected on validation, then the model is refit
  (as the GZSL two-stage protocol and scikit-learn's ``GridSearchCV(refit=True)``).
  Stage 1: a validation subset is carved from the training clips
  (:func:`carve_validation`: deterministic from the seed, grouped by clip, every adverb
  and action that has two or more training clips appears on both sides; default 10 %); a
  model trains on the rest and the epoch E with the best validation score (the mean of the
  reported metrics unless ``select_metric`` names one) is selected. Stage 2: a fresh model
  trains on all training clips for epochs 0..E and test is evaluated once, after epoch E.
* ``last`` / ``fixed_epoch``: the epoch is fixed in advance; test is evaluated once, there.
* ``best_per_metric``: the published protocol (legacy): each metric's maximum over all
  test evaluations, possibly from different epochs. **Selected on test data**; labelled
  "test-selected (published)".

Training-free methods (Priors, zero-shot) select nothing: "none (training-free)".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lowshot._registry import BENCHMARKS
from lowshot.data.adverbs.features import (
    ClipFeatureStore,
    feature_file,
    merge_stores,
    read_features,
)
from lowshot.data.adverbs.splits import (
    DATASETS,
    UNSEEN_DATASETS,
    AdverbSplit,
    SplitRows,
    Vocabulary,
    dataset_folder,
    load_air_native,
    load_split,
)
from lowshot.errors import ConfigError, DataError
from lowshot.metrics.retrieval import retrieval_metrics

#: Thesis Table 6.2 (seen) Priors row: mAP W / mAP M / Acc-A.
PUBLISHED_PRIORS: dict[str, dict[str, float]] = {
    "howto100m": {"map_w": 0.446, "map_m": 0.354, "acc_a": 0.786},
    "air": {"map_w": 0.491, "map_m": 0.263, "acc_a": 0.854},
    "activitynet": {"map_w": 0.217, "map_m": 0.159, "acc_a": 0.745},
    "msrvtt": {"map_w": 0.308, "map_m": 0.152, "acc_a": 0.723},
    "vatex": {"map_w": 0.216, "map_m": 0.086, "acc_a": 0.752},
}
#: AIR paper Table 3, Priors without action GT (reproduced exactly, reference §6).
PUBLISHED_PRIORS_NO_ACT: dict[str, dict[str, float]] = {
    "air": {"map_w": 0.335, "map_m": 0.100, "acc_a": 0.835},
    "activitynet": {"map_w": 0.094, "map_m": 0.050, "acc_a": 0.692},
    "msrvtt": {"map_w": 0.137, "map_m": 0.056, "acc_a": 0.723},
}

Protocol = Literal["best_per_metric", "last", "fixed_epoch", "validation"]


@dataclass
class LabelledRows:
    """Integer labels of annotation rows and where their features live.

    Attributes:
        adverbs: ``[N]`` adverb index.
        actions: ``[N]`` action index.
        clips: ``[N]`` storage index into ``store`` (None when no features are loaded).
        store: the feature store the clips index (None for feature-free methods).
    """

    adverbs: np.ndarray
    actions: np.ndarray
    clips: np.ndarray | None = None
    store: ClipFeatureStore | None = None

    def __len__(self) -> int:
        return len(self.adverbs)

    def subset(self, idx: np.ndarray) -> LabelledRows:
        """The rows ``idx`` (``[M]`` indices or a boolean ``[N]`` mask), sharing the same store."""
        return LabelledRows(
            self.adverbs[idx],
            self.actions[idx],
            None if self.clips is None else self.clips[idx],
            self.store,
        )


@dataclass
class AdverbData:
    """Everything a method needs: split, vocabulary, labelled rows (+ features).

    Attributes:
        split: the CSV-level split.
        train / test: labelled rows; ``val`` is carved from train when requested.
        antonyms: ``[n_adverbs]`` antonym index (None when antonyms are not used).
        unlabelled: rows of ``unlabelled.csv`` when requested (their ``adverbs`` come from
            the CSV but must never be used for training).
    """

    split: AdverbSplit
    train: LabelledRows
    test: LabelledRows
    antonyms: np.ndarray | None
    val: LabelledRows | None = None
    unlabelled: LabelledRows | None = None

    @property
    def vocab(self) -> Vocabulary:
        """The split's adverb/action vocabulary."""
        return self.split.vocab


def carve_validation(rows: SplitRows, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (train, val) by clip, deterministically from ``seed``.

    All rows of a clip stay on one side (features belong to clips). Clips are visited in
    a seeded random order: first, a clip goes to val when it brings an adverb or action
    that val lacks and every label of the clip keeps at least one training clip (so every
    adverb/action with two or more training clips is represented on both sides); then
    further clips whose labels all keep a training clip fill val up to
    ``round(fraction * n_clips)`` (val can be larger when coverage needs it).

    Raises:
        ConfigError: ``fraction`` not in (0, 1) or nothing left on a side.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"protocol.val_fraction must be in (0, 1), got {fraction}")
    labels: dict[str, set[str]] = {}
    for c, a, v in zip(rows.clip_ids, rows.adverbs, rows.actions):
        labels.setdefault(c, set()).update((f"adverb {a}", f"action {v}"))
    clips = sorted(labels)
    order = [clips[i] for i in np.random.default_rng(seed).permutation(len(clips))]
    in_train = Counter(lab for c in clips for lab in labels[c])  # training clips per label
    val: set[str] = set()
    covered: set[str] = set()

    def take(c: str) -> None:
        val.add(c)
        covered.update(labels[c])
        in_train.subtract(labels[c])

    def movable(c: str) -> bool:
        return c not in val and all(in_train[lab] >= 2 for lab in labels[c])

    for c in order:  # coverage
        if not labels[c] <= covered and movable(c):
            take(c)
    n_val = int(round(fraction * len(clips)))
    for c in order:  # fill up to the fraction
        if len(val) >= n_val:
            break
        if movable(c):
            take(c)
    is_val = np.array([c in val for c in rows.clip_ids])
    if is_val.all() or not is_val.any():
        raise ConfigError(f"validation fraction {fraction} leaves an empty train or val part")
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


@BENCHMARKS.register("adverbs")
def load_adverb_data(
    splits_root: str | Path,
    dataset: str,
    unseen: bool = False,
    features_root: str | Path | None = None,
    trust_pickle: bool = False,
    use_antonyms: bool = True,
    video_dim: int | None = None,
    joint_dim: int | None = None,
    air_native: bool = False,
    unlabelled: bool = False,
) -> AdverbData:
    """Read a split and (if ``features_root`` is given) its features.

    Seen splits look train rows up in ``train`` features and test rows in ``test``
    features; unseen splits use the merged train + test files (§1.1), which also hold the
    clips of ``unlabelled.csv`` (read when ``unlabelled``). ``air_native`` reads AIR's own
    CSVs (``<splits_root>/air/{train_df,test_df,antonyms}.csv``).

    Raises:
        DataError: any missing file, unknown label, missing clip, bad feature values.
    """
    if air_native:
        if dataset_folder(dataset) != "AIR" or unseen:
            raise ConfigError("air_native applies to the seen AIR split only")
        base = Path(splits_root)
        split = load_air_native(base / "air" if (base / "air").is_dir() else base)
    else:
        split = load_split(splits_root, dataset, unseen, unlabelled)
    vocab = split.vocab
    parts = {}
    stores: dict[str, ClipFeatureStore] = {}
    if features_root is not None:
        for part in ("train", "test"):
            stores[part] = read_features(
                feature_file(features_root, dataset, part), trust_pickle, video_dim, joint_dim
            )
        if unseen:
            stores["train"] = stores["test"] = merge_stores([stores["train"], stores["test"]])
    parts_rows = [("train", split.train), ("test", split.test)]
    if split.unlabelled is not None:
        stores["unlabelled"] = stores.get("train")  # merged train + test features
        parts_rows.append(("unlabelled", split.unlabelled))
    for part, rows in parts_rows:
        adv, act = vocab.encode(rows)
        store = stores.get(part)
        parts[part] = LabelledRows(
            adv, act, None if store is None else store.rows_index(rows), store
        )
    antonyms = vocab.antonym_index() if use_antonyms else None
    return AdverbData(
        split, parts["train"], parts["test"], antonyms, unlabelled=parts.get("unlabelled")
    )


def with_validation(data: AdverbData, fraction: float, seed: int) -> AdverbData:
    """A copy of ``data`` whose train rows are split into train and val (by clip)."""
    tr, va = carve_validation(data.split.train, fraction, seed)
    return AdverbData(
        data.split,
        data.train.subset(tr),
        data.test,
        data.antonyms,
        data.train.subset(va),
        data.unlabelled,
    )


def evaluate_scores(
    rows: LabelledRows,
    gt_scores: np.ndarray,
    antonyms: np.ndarray | None,
    no_act_scores: np.ndarray | None = None,
    only_present: bool = False,
) -> dict[str, float]:
    """Metrics of adverb scores ``[N, n_adverbs]`` (and ``no_act/*`` ones when given)."""
    out = retrieval_metrics(rows.adverbs, gt_scores, antonyms, only_present)
    if no_act_scores is not None:
        no_act = retrieval_metrics(rows.adverbs, no_act_scores, antonyms, only_present)
        out |= {f"no_act/{k}": v for k, v in no_act.items()}
    return out


def priors_pair_scores(train: LabelledRows, vocab: Vocabulary) -> np.ndarray:
    """Priors: ``[n_pairs]`` training counts ``count_train(a, v)`` (same for every video, §6)."""
    counts = np.zeros(vocab.n_pairs, dtype=np.float64)
    np.add.at(counts, vocab.pair_index(train.adverbs, train.actions), 1.0)
    return counts


def priors_metrics(data: AdverbData) -> dict[str, float]:
    """Priors evaluated on ``data.test`` with the GT action and without (``no_act/*``)."""
    counts = priors_pair_scores(data.train, data.vocab).reshape(
        data.vocab.n_adverbs, data.vocab.n_actions
    )
    gt = counts[:, data.test.actions].T  # [N, n_adverbs]
    no_act = np.broadcast_to(counts.max(axis=1), gt.shape)
    return evaluate_scores(data.test, gt, data.antonyms, no_act)


def priors_table(splits_root: str | Path, unseen: bool = False) -> dict[str, dict[str, float]]:
    """Priors on every (seen or unseen) split below ``splits_root``: name -> metrics."""
    names = UNSEEN_DATASETS if unseen else tuple(DATASETS)
    out = {}
    for name in names:
        data = load_adverb_data(splits_root, name, unseen)
        out[data.split.name] = priors_metrics(data)
    return out


# --------------------------------------------------------------------------- selection
#: table label of the published protocol
TEST_SELECTED = "test-selected (published)"
#: table label of methods without training
TRAINING_FREE = "none (training-free)"


def selection_label(
    protocol: Protocol,
    metrics: Sequence[str] = (),
    select_metric: str | None = None,
    epoch: int | None = None,
    val_fraction: float | None = None,
) -> str:
    """Short rule that produced a result, for result JSONs and every table row."""
    if protocol == "best_per_metric":
        return f"{TEST_SELECTED}: best of each metric over test evaluations"
    if protocol == "last":
        return "last epoch (fixed in advance)"
    if protocol == "fixed_epoch":
        return f"epoch {epoch} (fixed in advance)"
    if protocol == "validation":
        score = select_metric or f"mean({', '.join(metrics)})"
        return (
            f"validation-selected epoch (val {score} on {val_fraction:.0%} of train clips), "
            "refit on train"
        )
    raise ConfigError(f"unknown protocol '{protocol}'")


def validation_score(
    val: dict[str, float], metrics: Sequence[str], select_metric: str | None
) -> float:
    """The score the ``validation`` protocol maximises: ``select_metric`` or the mean of ``metrics``."""
    names = [select_metric] if select_metric else list(metrics)
    missing = [m for m in names if m not in val]
    if missing:
        raise ConfigError(f"validation metrics lack {missing}; have {sorted(val)}")
    return float(np.mean([val[m] for m in names]))


def best_validation_epoch(
    history: Sequence[dict[str, Any]], metrics: Sequence[str], select_metric: str | None
) -> int:
    """Epoch of the first maximum of :func:`validation_score` over records with ``val``."""
    scored = [
        (validation_score(r["val"], metrics, select_metric), r["epoch"])
        for r in history
        if "val" in r
    ]
    if not scored:
        raise DataError("no validation records to select from")
    best = max(v for v, _ in scored)
    return next(e for v, e in scored if v == best)


def select_metrics(
    history: Sequence[dict[str, Any]],
    protocol: Protocol,
    metrics: Sequence[str],
    epoch: int | None = None,
) -> dict[str, Any]:
    """Pick the reported test metrics from evaluation records.

    Args:
        history: records with ``epoch`` and ``test`` (metric dict). Only the published
            protocol has ``test`` at every evaluation; the others hold one ``test`` record,
            at the epoch fixed in advance or chosen on validation (the refit's last epoch).
        protocol: see the module docstring.
        metrics: names of the test metrics to report.
        epoch: the epoch for ``protocol="fixed_epoch"``.

    Returns:
        ``{"protocol", "metrics": {name: value}, "epochs": {name: epoch}}``.

    Raises:
        ConfigError: unknown protocol, or the requested epoch is missing.
    """
    evals = [r for r in history if "test" in r]
    if not evals:
        raise DataError("no evaluation records to select from")
    if protocol == "best_per_metric":
        best: dict[str, float] = {}
        epochs: dict[str, int] = {}
        for r in evals:
            for m in metrics:
                v = r["test"].get(m)
                if v is not None and (m not in best or v > best[m]):
                    best[m], epochs[m] = v, r["epoch"]
        return {"protocol": protocol, "metrics": best, "epochs": epochs}
    if protocol == "fixed_epoch":
        match = [r for r in evals if r["epoch"] == epoch]
        if not match:
            raise ConfigError(f"protocol.epoch={epoch} was never evaluated")
        chosen = match[-1]
    elif protocol in ("last", "validation"):
        chosen = evals[-1]
    else:
        raise ConfigError(f"unknown protocol '{protocol}'")
    vals = {m: chosen["test"][m] for m in metrics if m in chosen["test"]}
    return {"protocol": protocol, "metrics": vals, "epochs": {m: chosen["epoch"] for m in vals}}
