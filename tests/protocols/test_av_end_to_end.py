"""AVCA and TCaF through the full two-stage protocol on tiny data, plus the B.2.3 robustness curve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from av_tiny import AVCA_TINY, TCAF_TINY, make_benchmark, tiny_spec

from lowshot.methods.av.avca import AVCA, AVCAConfig
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.protocols.calibration import beta_grid
from lowshot.protocols.gzsl import TwoStageProtocol, evaluate_gzsl
from lowshot.protocols.robustness import NoisyAudioCollate, audio_noise_robustness, noise_step_mask
from lowshot.recipes.gzsl_config import TrainConfig
from lowshot.recipes.gzsl_trainer import MethodTrainer

pytestmark = pytest.mark.usefixtures("one_thread")

LOW_DROPOUT = dict(embedding_dropout=0.1, decoder_dropout=0.1, additional_dropout=0.1)
TCAF_DROPOUT = dict(token_dropout=0.1, transformer_dropout=0.1, **LOW_DROPOUT)
AVCA_SMALL = AVCAConfig(**AVCA_TINY, **LOW_DROPOUT)
TCAF_SMALL = TCaFConfig(**TCAF_TINY, **TCAF_DROPOUT)
TRAIN = TrainConfig(
    epochs=5, batch_size=32, n_batches=20, lr=3e-3, eval_batch_size=256, progress=False
)


def _fit(method_cls, config, temporal: bool) -> tuple[TwoStageProtocol, object]:
    bench = make_benchmark(temporal=temporal)

    def make_trainer(stage: int) -> MethodTrainer:
        torch.manual_seed(stage)
        return MethodTrainer(
            method_cls(config, tiny_spec(temporal)), bench, stage, TRAIN, 0, torch.device("cpu")
        )

    return TwoStageProtocol(TRAIN.epochs, beta_grid(0.0, 3.0, 16)).fit(bench, make_trainer), bench


def _chance_hm(bench) -> float:
    """HM (x100) of random scores: the larger of the analytic value and a few random draws."""
    rng = np.random.default_rng(0)
    draws = [
        evaluate_gzsl(
            bench,
            2,
            lambda fs: rng.random((len(fs), bench.num_classes)).astype(np.float32),
            beta=0.0,
        ).hm
        for _ in range(5)
    ]
    return 100 * max(1.0 / bench.num_classes, float(np.mean(draws)))


@pytest.fixture(scope="module")
def trained_tcaf():
    torch.set_num_threads(1)
    return _fit(TCaF, TCAF_SMALL, temporal=True)


def test_avca_two_stage_protocol_beats_chance() -> None:
    protocol, bench = _fit(AVCA, AVCA_SMALL, temporal=False)
    summary = protocol.summary()
    assert 0 <= protocol.best_epoch_ < TRAIN.epochs and protocol.beta_ in beta_grid(0.0, 3.0, 16)
    assert summary["HM"] > 3 * _chance_hm(bench), summary
    assert summary["ZSL"] > 100 / 6  # chance ZSL: 6 unseen test classes


def test_tcaf_two_stage_protocol_beats_chance(trained_tcaf) -> None:
    protocol, bench = trained_tcaf
    summary = protocol.summary()
    assert summary["HM"] > 3 * _chance_hm(bench), summary
    assert summary["ZSL"] > 100 / 6


def test_noise_step_mask_counts() -> None:
    valid = np.array([[True] * 8 + [False] * 2, [True] * 4 + [False] * 6])
    rng = np.random.default_rng(0)
    for p, counts in ((0.0, [0, 0]), (0.5, [4, 2]), (1.0, [8, 4])):
        chosen = noise_step_mask(valid, p, rng)
        assert chosen.sum(1).tolist() == counts and not (chosen & ~valid).any()
    with pytest.raises(ValueError):
        noise_step_mask(valid, 1.5, rng)


def test_noisy_collate_replaces_only_chosen_audio_steps(tiny_temporal) -> None:
    method = TCaF(TCAF_SMALL, tiny_spec())
    fs = tiny_temporal.splits["stage_1_train"]
    idx = np.arange(6)
    clean = method.collate(fs, idx, None, False)
    noisy = NoisyAudioCollate(method.collate, 0.5, seed=1)(fs, idx, None, False)
    changed = (clean.audio != noisy.audio).any(-1)
    expected = np.rint(0.5 * clean.audio_mask.sum(1).numpy())
    assert changed.sum(1).tolist() == expected.tolist()
    assert not (changed & ~clean.audio_mask).any()
    torch.testing.assert_close(noisy.video, clean.video)


def test_robustness_curve(trained_tcaf) -> None:
    protocol, bench = trained_tcaf
    rows = audio_noise_robustness(protocol.trainer_.method, bench, [0.0, 0.5, 1.0], protocol.beta_)
    assert [r["proportion"] for r in rows] == [0.0, 0.5, 1.0]
    assert rows[0]["HM"] == pytest.approx(
        protocol.summary()["HM"]
    )  # no noise = the protocol's test result
    assert rows[-1]["HM"] < rows[0]["HM"]  # an all-noise audio stream hurts


def test_noisy_collate_on_averaged_audio(tiny_averaged) -> None:
    method = AVCA(AVCA_SMALL, tiny_spec(temporal=False))
    fs = tiny_averaged.splits["stage_1_train"]
    idx = np.arange(8)
    clean = method.collate(fs, idx, None, False)
    all_noise = NoisyAudioCollate(method.collate, 1.0)(fs, idx, None, False)
    no_noise = NoisyAudioCollate(method.collate, 0.0)(fs, idx, None, False)
    assert (all_noise.audio != clean.audio).all(-1).all()  # every sample's audio replaced
    torch.testing.assert_close(no_noise.audio, clean.audio)
    torch.testing.assert_close(all_noise.video, clean.video)
