"""Readers of split CSVs, antonyms and feature files; the synthetic generator; bad input -> clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lowshot.data.adverbs.features import (
    ClipFeatureStore,
    convert_features,
    feature_file,
    merge_stores,
    read_features,
    write_released_features,
    write_safe_features,
)
from lowshot.data.adverbs.splits import load_split, read_antonyms, read_split_csv
from lowshot.data.adverbs.synth import SynthSpec, generate
from lowshot.errors import ConfigError, DataError, UntrustedPickleError
from lowshot.protocols.adverbs import carve_validation, load_adverb_data

pytestmark = pytest.mark.usefixtures("one_thread")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------ CSVs
def test_split_csv_aliases_and_errors(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "a.csv",
        "seg_id,clustered_verb,clustered_adverb,verb_label\nx_1-2,cut,slowly,3\n",
    )
    rows = read_split_csv(p)
    assert rows.clip_ids == ("x_1-2",) and rows.actions == ("cut",) and rows.adverbs == ("slowly",)
    with pytest.raises(DataError, match="missing column"):
        read_split_csv(_write(tmp_path / "b.csv", "clip_id,clustered_adverb\n1,slowly\n"))
    with pytest.raises(DataError, match="empty"):
        read_split_csv(_write(tmp_path / "c.csv", "clip_id,clustered_adverb,clustered_action\n"))
    with pytest.raises(DataError, match="not found"):
        read_split_csv(tmp_path / "nope.csv")


def test_antonym_file_checks(tmp_path: Path) -> None:
    ok = _write(
        tmp_path / "ant.csv", "adverb,antonym\nslowly,quickly\nquickly,slowly"
    )  # no final newline
    assert read_antonyms(ok) == {"slowly": "quickly", "quickly": "slowly"}
    with pytest.raises(DataError, match="not symmetric"):
        read_antonyms(_write(tmp_path / "bad.csv", "adverb,antonym\nslowly,quickly\n"))
    with pytest.raises(DataError, match="header"):
        read_antonyms(_write(tmp_path / "hdr.csv", "a,b\nslowly,quickly\n"))


def _copy_split(src: Path, dst: Path) -> Path:
    shutil.copytree(src / "splits", dst / "splits")
    return dst / "splits" / "s3d" / "seen_compositions" / "VATEX_Adverbs"


def test_unknown_adverb_in_test_or_antonyms(synth_root: Path, tmp_path: Path) -> None:
    folder = _copy_split(synth_root, tmp_path)
    ant = folder / "antonyms.csv"
    ant.write_text(ant.read_text() + "sideways,sideways\n")
    with pytest.raises(DataError, match="sideways"):
        load_split(tmp_path, "vatex")
    lines = ant.read_text().splitlines()
    ant.write_text("\n".join(lines[:-2]) + "\n")  # drop a pair's second line and the bogus one
    with pytest.raises(DataError, match="antonym"):
        load_split(tmp_path, "vatex")


def test_unknown_dataset_suggests() -> None:
    with pytest.raises(DataError, match="did you mean 'vatex'"):
        load_split("/nonexistent", "vatx")


# ------------------------------------------------------------------ features
def test_released_features_need_trust(synth_root: Path) -> None:
    path = feature_file(synth_root, "vatex", "train")
    assert path.suffix == ".pth"
    with pytest.raises(UntrustedPickleError, match="--trust-pickle"):
        read_features(path)


def test_read_store_padding_and_lookup(synth_root: Path) -> None:
    data = load_adverb_data(
        synth_root, "vatex", features_root=synth_root, trust_pickle=True, video_dim=16
    )
    store = data.train.store
    assert store is not None and store.video_dim == 16 and store.joint_dim == 8
    lengths = store.lengths
    assert lengths.min() >= 2 and lengths.max() <= 5 and len(set(lengths.tolist())) > 1
    t = torch.arange(store.video.shape[1])[None, :, None]
    assert (store.video.masked_select(t >= lengths[:, None, None]) == 0).all()  # zero padding
    # every CSV row (duplicates included) maps to a clip of the right file
    assert len(data.train.clips) == len(data.split.train)


def test_safe_conversion_roundtrip(synth_root: Path, tmp_path: Path) -> None:
    src = feature_file(synth_root, "vatex", "test")
    dst = convert_features(src, tmp_path / "test.safetensors", trust_pickle=True)
    a, b = read_features(src, trust_pickle=True), read_features(dst)
    assert a.clip_ids == b.clip_ids
    assert (
        torch.equal(a.video, b.video)
        and torch.equal(a.joint, b.joint)
        and torch.equal(a.lengths, b.lengths)
    )
    assert b"pickle" not in dst.read_bytes()[:200]  # a plain safetensors header


def test_safetensors_preferred_in_layout(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "r"
    shutil.copytree(synth_root, root)
    src = feature_file(root, "vatex", "train")
    convert_features(src, trust_pickle=True)
    assert feature_file(root, "vatex", "train").suffix == ".safetensors"
    convert_features(feature_file(root, "vatex", "test"), trust_pickle=True)
    data = load_adverb_data(root, "vatex", features_root=root)  # no trust needed any more
    assert data.test.store is not None


def test_integer_clip_ids(synth_int_root: Path) -> None:
    data = load_adverb_data(
        synth_int_root, "howto100m", features_root=synth_int_root, trust_pickle=True
    )
    obj = torch.load(feature_file(synth_int_root, "howto100m", "train"), weights_only=False)
    assert all(isinstance(k, int) for k in obj["features"])
    assert data.split.train.clip_ids[0].isdigit()
    store = data.train.store
    assert (
        store.find(int(data.split.train.clip_ids[0]))
        == store.find(data.split.train.clip_ids[0])
        is not None
    )


def test_missing_clip_is_named(synth_root: Path, tmp_path: Path) -> None:
    folder = _copy_split(synth_root, tmp_path)
    (tmp_path / "features").symlink_to(synth_root / "features")
    train = folder / "train.csv"
    lines = train.read_text().splitlines()
    lines.append("ghost_clip" + lines[1][lines[1].index(",") :])
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="ghost_clip.*|missing from the features"):
        load_adverb_data(tmp_path, "vatex", features_root=tmp_path, trust_pickle=True)


@pytest.mark.parametrize(
    ("video", "match"),
    [
        ({"a": np.full((3, 4), np.nan)}, "NaN or inf"),
        ({"a": np.full((3, 4), np.inf)}, "NaN or inf"),
        ({"a": np.zeros((3, 4)), "b": np.zeros((3, 5))}, "dimension 5"),
        ({"a": np.zeros((0, 4))}, "shape"),
    ],
)
def test_bad_feature_values(tmp_path: Path, video: dict, match: str) -> None:
    path = write_released_features(tmp_path / "f.pth", video)
    with pytest.raises(DataError, match=match):
        read_features(path, trust_pickle=True)


def test_expected_dims_and_corrupt_files(synth_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected 1024"):
        read_features(feature_file(synth_root, "vatex", "train"), trust_pickle=True, video_dim=1024)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot read"):
        read_features(bad, trust_pickle=True)
    bad_safe = tmp_path / "bad.safetensors"
    bad_safe.write_bytes(b"\x00" * 20)
    with pytest.raises(DataError, match="cannot read"):
        read_features(bad_safe)
    torch.save({"nope": 1}, tmp_path / "wrong.pth")
    with pytest.raises(DataError, match="not a released feature file"):
        read_features(tmp_path / "wrong.pth", trust_pickle=True)
    with pytest.raises(DataError, match="train.pth"):
        feature_file(tmp_path, "vatex", "train")


def test_merge_keeps_first_and_reports_conflicts() -> None:
    def store(ids: list[str], value: float) -> ClipFeatureStore:
        v = torch.full((len(ids), 2, 3), value)
        return ClipFeatureStore(ids, v, None, torch.full((len(ids),), 2))

    m = merge_stores([store(["a", "b"], 1.0), store(["b", "c"], 1.0)])
    assert m.clip_ids == ["a", "b", "c"] and m.merge_conflicts == []
    m = merge_stores([store(["a"], 1.0), store(["a"], 2.0)])
    assert m.merge_conflicts == ["a"] and float(m.video[0, 0, 0]) == 1.0


def test_unseen_split_uses_merged_features(synth_root: Path) -> None:
    data = load_adverb_data(
        synth_root, "vatex", unseen=True, features_root=synth_root, trust_pickle=True
    )
    assert data.train.store is data.test.store
    tr = set(zip(data.train.adverbs.tolist(), data.train.actions.tolist()))
    te = set(zip(data.test.adverbs.tolist(), data.test.actions.tolist()))
    assert not tr & te


def test_empty_safe_roundtrip_and_validation_carving(synth_root: Path, tmp_path: Path) -> None:
    s = load_split(synth_root, "vatex")
    tr, va = carve_validation(s.train, 0.2, seed=0)
    assert not {s.train.clip_ids[i] for i in tr} & {
        s.train.clip_ids[i] for i in va
    }  # grouped by clip
    assert len(tr) + len(va) == len(s.train)
    with pytest.raises(ConfigError):
        carve_validation(s.train, 1.5, 0)
    st = ClipFeatureStore(["x"], torch.ones(1, 3, 2), None, torch.tensor([2]))
    back = read_features(write_safe_features(st, tmp_path / "s.safetensors"))
    assert back.video.shape == (1, 2, 2)


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.3])
def test_validation_carve_is_stratified_and_seeded(synth_root: Path, fraction: float) -> None:
    """Every adverb/action with >= 2 training clips is on both sides; same seed, same split."""
    s = load_split(synth_root, "vatex").train
    tr, va = carve_validation(s, fraction, seed=5)
    assert np.array_equal(tr, carve_validation(s, fraction, seed=5)[0])
    assert not np.array_equal(va, carve_validation(s, fraction, seed=6)[1])
    n_clips = len(set(s.clip_ids))
    assert len({s.clip_ids[i] for i in va}) >= round(fraction * n_clips)
    for names in (s.adverbs, s.actions):
        clips_of: dict[str, set[str]] = {}
        for c, n in zip(s.clip_ids, names):
            clips_of.setdefault(n, set()).add(c)
        on_train, on_val = {names[i] for i in tr}, {names[i] for i in va}
        assert on_train == set(names)  # training keeps every label
        assert on_val == {n for n, c in clips_of.items() if len(c) >= 2}


# ------------------------------------------------------------------ synth
def test_synth_is_deterministic(tmp_path: Path) -> None:
    spec = SynthSpec(n_clips=60, n_adverb_pairs=2, n_actions=3, video_dim=8, joint_dim=4, seed=5)
    generate(tmp_path / "a", spec)
    generate(tmp_path / "b", spec)
    rel = "splits/s3d/seen_compositions/VATEX_Adverbs/train.csv"
    assert (tmp_path / "a" / rel).read_text() == (tmp_path / "b" / rel).read_text()
    fa = read_features(feature_file(tmp_path / "a", "vatex", "train"), trust_pickle=True)
    fb = read_features(feature_file(tmp_path / "b", "vatex", "train"), trust_pickle=True)
    assert torch.equal(fa.video, fb.video)
    generate(tmp_path / "c", SynthSpec(**{**spec.__dict__, "seed": 6}))
    assert (tmp_path / "c" / rel).read_text() != (tmp_path / "a" / rel).read_text()


def test_vocabulary_rejects_unknown_labels(synth_root: Path) -> None:
    from lowshot.data.adverbs.splits import SplitRows

    s = load_split(synth_root, "vatex")
    with pytest.raises(DataError, match="unknown adverb 'sideways'"):
        s.vocab.encode(SplitRows(("x",), ("sideways",), (s.vocab.actions[0],), Path("x.csv")))
    with pytest.raises(DataError, match="unknown action 'fly'"):
        s.vocab.encode(SplitRows(("x",), (s.vocab.adverbs[0],), ("fly",), Path("x.csv")))


@pytest.mark.data
def test_air_native_layout(tmp_path: Path, shared_data: Path) -> None:
    """AIR's own CSVs + AIR's own feature folder (features synthesised for its clip ids)."""
    shutil.copytree(shared_data / "adverbs" / "air", tmp_path / "air")
    native = tmp_path / "air" / "s3d_features" / "stack=16_stride=1"
    for part in ("train", "test"):
        ids = read_split_csv(tmp_path / "air" / f"{part}_df.csv").clip_ids
        write_released_features(
            native / f"{part}.pth", {c: np.ones((2, 4)) for c in dict.fromkeys(ids)}
        )
    data = load_adverb_data(
        tmp_path, "air", features_root=tmp_path, trust_pickle=True, air_native=True
    )
    assert len(data.train) == 5602 and data.test.store.video_dim == 4
