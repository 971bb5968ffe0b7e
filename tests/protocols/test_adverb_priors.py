"""Acceptance test of the metrics: Priors reproduces thesis Table 6.2 exactly (needs ../shared/data)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lowshot.data.adverbs.splits import load_air_native, load_split, overlap_report
from lowshot.protocols.adverbs import (
    PUBLISHED_PRIORS,
    PUBLISHED_PRIORS_NO_ACT,
    load_adverb_data,
    priors_metrics,
)

pytestmark = pytest.mark.usefixtures("one_thread")

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def adverbs_root(shared_data: Path) -> Path:
    root = shared_data / "adverbs"
    if not root.is_dir():
        pytest.skip("adverb split files absent")
    return root


@pytest.mark.parametrize("dataset", sorted(PUBLISHED_PRIORS))
def test_priors_reproduces_table_6_2(adverbs_root: Path, dataset: str) -> None:
    got = priors_metrics(load_adverb_data(adverbs_root, dataset))
    for metric, published in PUBLISHED_PRIORS[dataset].items():
        assert round(got[metric], 3) == published, (dataset, metric, got[metric])
    for metric, published in PUBLISHED_PRIORS_NO_ACT.get(dataset, {}).items():
        assert round(got[f"no_act/{metric}"], 3) == published, (dataset, metric)


# (train rows, test rows, #adverbs, #actions, train pairs, test pairs, test & train pairs), reference §1.1
STATS = {
    ("air", False): (5602, 1401, 10, 48, 181, 143, 138),
    ("activitynet", False): (2377, 595, 20, 113, 562, 275, 202),
    ("howto100m", False): (5139, 323, 6, 72, 253, 82, 78),
    ("msrvtt", False): (1397, 350, 18, 104, 398, 169, 117),
    ("vatex", False): (11157, 2790, 34, 135, 1406, 779, 661),
    ("activitynet", True): (1490, 848, 20, 113, 319, 316, 0),
    ("msrvtt", True): (987, 454, 18, 104, 225, 225, 0),
    ("vatex", True): (6603, 3293, 34, 133, 635, 543, 0),
}


@pytest.mark.parametrize(("dataset", "unseen"), sorted(STATS))
def test_split_statistics(adverbs_root: Path, dataset: str, unseen: bool) -> None:
    s = load_split(adverbs_root, dataset, unseen)
    tr = set(zip(s.train.adverbs, s.train.actions))
    te = set(zip(s.test.adverbs, s.test.actions))
    got = (
        len(s.train),
        len(s.test),
        s.vocab.n_adverbs,
        s.vocab.n_actions,
        len(tr),
        len(te),
        len(tr & te),
    )
    assert got == STATS[(dataset, unseen)]
    assert set(s.test.adverbs) == set(s.vocab.adverbs)  # AP never undefined
    if unseen:  # no antonym composition of a test pair is seen in training either
        ant = s.vocab.antonyms
        assert not {(ant[a], v) for a, v in te} & tr


def test_vocabulary_order_and_duplicates(adverbs_root: Path) -> None:
    s = load_split(adverbs_root, "air")
    assert s.vocab.adverbs[:4] == ("gently", "slowly", "finely", "quickly")
    assert s.vocab.adverbs[-1] == "partially"
    vatex = load_split(adverbs_root, "vatex")
    rep = overlap_report(vatex)
    assert rep["train_duplicate_rows"] == 2556 and rep["clips_in_train_and_test"] == 1050
    counts = Counter(vatex.train.adverbs + vatex.test.adverbs)
    assert [counts[a] for a in vatex.vocab.adverbs] == sorted(counts.values(), reverse=True)


def test_air_native_equals_regada_air(adverbs_root: Path) -> None:
    native = load_air_native(adverbs_root / "air")
    regada = load_split(adverbs_root, "air")
    assert native.train == regada.train.__class__(
        regada.train.clip_ids, regada.train.adverbs, regada.train.actions, native.train.path
    )
    assert native.vocab.adverbs == regada.vocab.adverbs
    assert np.array_equal(native.vocab.antonym_index(), regada.vocab.antonym_index())


def test_int_like_howto_ids_are_kept_as_written(adverbs_root: Path) -> None:
    s = load_split(adverbs_root, "howto100m")
    assert s.train.clip_ids[0] == "12"
