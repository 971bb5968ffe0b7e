"""Sequence-length policy: padding, crops, audio window from the two rates (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from lowshot.data.av.featureset import SequenceStore
from lowshot.data.av.sequences import (
    audio_window_length,
    gather_av_windows,
    gather_windows,
    window_starts,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _store(lengths: list[int], dim: int = 3, offset: float = 0.0) -> SequenceStore:
    # value of step t of sequence i: (i * 1000 + t + offset) in every channel
    return SequenceStore.from_arrays(
        [
            np.full((n, dim), 0.0, np.float32) + (i * 1000 + np.arange(n)[:, None] + offset)
            for i, n in enumerate(lengths)
        ]
    )


def test_audio_window_covers_the_video_seconds() -> None:
    assert audio_window_length(60, 0.64, 0.96) == 40  # 38.4 s
    assert audio_window_length(300, 0.64, 0.96) == 200
    assert audio_window_length(60, 0.64, 0.96, legacy=True) == 37  # published round(60*0.64*0.96)
    assert audio_window_length(300, 0.64, 0.96, legacy=True) == 184
    assert audio_window_length(60, 1.0, 1.0) == 60  # SeLaVi


def test_pad_to_batch_max_keeps_values_and_masks() -> None:
    store = _store([2, 5, 3])
    w = gather_windows(store, np.array([2, 0, 1]), np.zeros(3, np.int64), None)
    assert w.values.shape == (3, 5, 3)
    assert w.mask.sum(1).tolist() == [3, 2, 5]
    assert w.values[0, :3, 0].tolist() == [2000, 2001, 2002] and (w.values[0, 3:] == 0).all()
    assert w.steps[2].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(w.times(0.64)[2], np.arange(5) * 0.64, rtol=1e-6)


def test_windows_from_several_blocks() -> None:
    store = SequenceStore.concat([_store([4, 2]), _store([3], offset=0.5)])
    w = gather_windows(store, np.array([2, 0]), np.array([1, 2]), 2)
    assert w.values[0, :, 0].tolist() == [1.5, 2.5] and w.values[1, :, 0].tolist() == [2, 3]


def test_center_and_random_crops() -> None:
    lengths = np.array([10, 4, 300])
    assert window_starts(lengths, 6, "center").tolist() == [2, 0, 147]
    rng = np.random.default_rng(0)
    starts = np.stack([window_starts(lengths, 6, "random", rng) for _ in range(200)])
    assert starts[:, 0].min() == 0 and starts[:, 0].max() == 4 and (starts[:, 1] == 0).all()


@pytest.mark.parametrize("legacy", [False, True])
def test_fixed_mode_aligns_audio_with_video(legacy: bool) -> None:
    video = _store([500, 30])
    audio = _store([334, 20])  # ~320 s and ~19 s of audio at 0.96 s
    a, v = gather_av_windows(
        audio,
        video,
        np.array([0, 1]),
        0.96,
        0.64,
        "fixed",
        300,
        train=False,
        legacy_audio_len=legacy,
    )
    assert v.mask.sum(1).tolist() == [300, 30]
    n_a = 184 if legacy else 200
    assert a.mask.sum(1).tolist() == [n_a, 20]
    v_start = v.steps[0, 0]
    assert v_start == 100  # centred: (500 - 300) // 2
    # the audio window starts at the same second as the video window
    assert abs(a.times(0.96)[0, 0] - v.times(0.64)[0, 0]) < 0.96
    if not legacy:  # and ends at (about) the same second
        assert abs(a.times(0.96)[0, n_a - 1] + 0.96 - (v.times(0.64)[0, 299] + 0.64)) < 0.96


def test_max_mode_never_trims() -> None:
    video, audio = _store([500, 30]), _store([334, 20])
    a, v = gather_av_windows(audio, video, np.array([0, 1]), 0.96, 0.64, "max", 60, train=True)
    assert v.values.shape[1] == 500 and a.values.shape[1] == 334


def test_gather_from_a_read_only_float16_memmap_leaves_it_untouched(tmp_path) -> None:
    """One block: the batch is gathered straight from it (a copy), cast to float32, padding zeroed."""
    data = np.arange(12, dtype=np.float16).reshape(6, 2) + 1
    path = tmp_path / "block.npy"
    np.save(path, data)
    block = np.load(path, mmap_mode="r")
    store = SequenceStore([block], np.zeros(2, np.int32), np.array([0, 4]), np.array([4, 2]))
    w = gather_windows(store, np.array([1, 0]), np.zeros(2, np.int64), None)
    assert w.values.dtype == np.float32 and w.values.shape == (2, 4, 2)
    assert w.values[0, :2].tolist() == [[9, 10], [11, 12]] and (w.values[0, 2:] == 0).all()
    np.testing.assert_array_equal(np.load(path), data)
