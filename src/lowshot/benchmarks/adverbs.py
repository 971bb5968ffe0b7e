"""Video-adverb retrieval protocol: data assembly, evaluation, Priors, model selection.

Evaluation (``reference/adverbs.md`` §5): a method gives, for each test row, the scores of
every adverb paired with the row's GT action (``[N, n_adverbs]``) and optionally the
no-action-GT scores (max over actions). Seen splits report mAP W, mAP M and Acc-A;
unseen splits report Acc-A (cls).

Model selection (§7.6, §10.2), recorded with every result:

* ``best_per_metric``: the published protocol; each metric's maximum over all test
  evaluations, possibly from different epochs. **Selected on test data.**
* ``last``: the last evaluation.
* ``fixed_epoch``: the evaluation at a given epoch.
* ``validation``: the epoch with the best ``select_metric`` on a validation subset carved
  from the training rows (grouped by clip); all test metrics from that one epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lowshot._registry import BENCHMARKS
from lowshot.data.adverbs_features import (
    ClipFeatureStore,
    feature_file,
    merge_stores,
    read_features,
)
from lowshot.data.adverbs_splits import (
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
    """

    split: AdverbSplit
    train: LabelledRows
    test: LabelledRows
    antonyms: np.ndarray | None
    val: LabelledRows | None = None

    @property
    def vocab(self) -> Vocabulary:
        return self.split.vocab


def carve_validation(rows: SplitRows, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (train, val), keeping all rows of a clip on one side.

    Raises:
        ConfigError: ``fraction`` not in (0, 1) or nothing left on a side.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"protocol.val_fraction must be in (0, 1), got {fraction}")
    clips = sorted(set(rows.clip_ids))
    rng = np.random.default_rng(seed)
    n_val = int(round(fraction * len(clips)))
    val_clips = set(np.asarray(clips, dtype=object)[rng.permutation(len(clips))[:n_val]].tolist())
    is_val = np.array([c in val_clips for c in rows.clip_ids])
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
) -> AdverbData:
    """Read a split and (if ``features_root`` is given) its features.

    Seen splits look train rows up in ``train`` features and test rows in ``test``
    features; unseen splits use the merged train + test files (§1.1). ``air_native``
    reads AIR's own CSVs (``<splits_root>/air/{train_df,test_df,antonyms}.csv``).

    Raises:
        DataError: any missing file, unknown label, missing clip, bad feature values.
    """
    if air_native:
        if dataset_folder(dataset) != "AIR" or unseen:
            raise ConfigError("air_native applies to the seen AIR split only")
        base = Path(splits_root)
        split = load_air_native(base / "air" if (base / "air").is_dir() else base)
    else:
        split = load_split(splits_root, dataset, unseen)
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
    for part, rows in (("train", split.train), ("test", split.test)):
        adv, act = vocab.encode(rows)
        store = stores.get(part)
        parts[part] = LabelledRows(
            adv, act, None if store is None else store.rows_index(rows), store
        )
    antonyms = vocab.antonym_index() if use_antonyms else None
    return AdverbData(split, parts["train"], parts["test"], antonyms)


def with_validation(data: AdverbData, fraction: float, seed: int) -> AdverbData:
    """A copy of ``data`` whose train rows are split into train and val (by clip)."""
    tr, va = carve_validation(data.split.train, fraction, seed)
    return AdverbData(
        data.split, data.train.subset(tr), data.test, data.antonyms, data.train.subset(va)
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
def select_metrics(
    history: Sequence[dict[str, Any]],
    protocol: Protocol,
    metrics: Sequence[str],
    select_metric: str = "map_m",
    epoch: int | None = None,
) -> dict[str, Any]:
    """Pick reported test metrics from evaluation records.

    Args:
        history: records with ``epoch``, ``test`` (metric dict) and, for the validation
            protocol, ``val`` (metric dict). Records without ``test`` are ignored.
        protocol: see the module docstring.
        metrics: names of the test metrics to report.
        select_metric: validation metric maximised by ``protocol="validation"``.
        epoch: the epoch for ``protocol="fixed_epoch"``.

    Returns:
        ``{"protocol", "selected_on", "metrics": {name: value}, "epochs": {name: epoch}}``.

    Raises:
        ConfigError: unknown protocol, or the requested epoch/metric is missing.
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
        return {"protocol": protocol, "selected_on": "test (published protocol; optimistic)",
                "metrics": best, "epochs": epochs}  # fmt: skip
    if protocol == "last":
        chosen, on = evals[-1], "none (last evaluation)"
    elif protocol == "fixed_epoch":
        match = [r for r in evals if r["epoch"] == epoch]
        if not match:
            raise ConfigError(f"protocol.epoch={epoch} was never evaluated")
        chosen, on = match[-1], f"none (fixed epoch {epoch})"
    elif protocol == "validation":
        with_val = [r for r in evals if select_metric in r.get("val", {})]
        if not with_val:
            raise ConfigError(f"no validation records with metric '{select_metric}'")
        chosen = max(with_val, key=lambda r: r["val"][select_metric])  # first max wins
        on = f"validation split carved from train ({select_metric})"
    else:
        raise ConfigError(f"unknown protocol '{protocol}'")
    vals = {m: chosen["test"][m] for m in metrics if m in chosen["test"]}
    return {"protocol": protocol, "selected_on": on, "metrics": vals,
            "epochs": {m: chosen["epoch"] for m in vals}}  # fmt: skip
