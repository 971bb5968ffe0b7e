"""The audio-visual GZSL baselines through the full two-stage protocol on tiny data."""

from __future__ import annotations

import pytest
import torch
from av_tiny import AVCA_TINY, TCAF_TINY, make_benchmark, tiny_spec

from lowshot.methods.av.attention_fusion import AttentionFusion, AttentionFusionConfig
from lowshot.methods.av.avgzslnet import AVGZSLNet, AVGZSLNetConfig
from lowshot.methods.av.cjme import CJME, CJMEConfig
from lowshot.methods.av.hyper_multiple import HyperMultiple, HyperMultipleConfig
from lowshot.methods.av.perceiver import Perceiver, PerceiverConfig
from lowshot.protocols.calibration import beta_grid
from lowshot.protocols.gzsl import TwoStageProtocol
from lowshot.recipes.gzsl_config import TrainConfig
from lowshot.recipes.gzsl_trainer import MethodTrainer

pytestmark = pytest.mark.usefixtures("one_thread")

TEMPORAL = dict(
    TCAF_TINY,
    depth=1,
    embedding_dropout=0.1,
    token_dropout=0.1,
    transformer_dropout=0.1,
)
CASES = {
    "cjme": (CJME, CJMEConfig(embedding_hidden=32, dim_out=8), False),
    "avgzslnet": (
        AVGZSLNet,
        AVGZSLNetConfig(embedding_hidden=32, dim_out=8, embedding_dropout=0.1, decoder_dropout=0.1),
        False,
    ),
    "hyper_multiple": (
        HyperMultiple,
        HyperMultipleConfig(
            **AVCA_TINY,
            embedding_dropout=0.1,
            decoder_dropout=0.1,
            additional_dropout=0.1,
        ),
        False,
    ),
    "attention_fusion": (AttentionFusion, AttentionFusionConfig(**TEMPORAL), True),
    "perceiver": (Perceiver, PerceiverConfig(**TEMPORAL, n_latents=8), True),
}
TRAIN = TrainConfig(
    epochs=5, batch_size=32, n_batches=20, lr=3e-3, eval_batch_size=256, progress=False
)


@pytest.mark.parametrize("name", sorted(CASES))
def test_two_stage_protocol_beats_chance(name: str) -> None:
    method_cls, config, temporal = CASES[name]
    bench = make_benchmark(temporal=temporal)

    def make_trainer(stage: int) -> MethodTrainer:
        torch.manual_seed(stage)
        return MethodTrainer(
            method_cls(config, tiny_spec(temporal)), bench, stage, TRAIN, 0, torch.device("cpu")
        )

    protocol = TwoStageProtocol(TRAIN.epochs, beta_grid(0.0, 3.0, 16)).fit(bench, make_trainer)
    summary = protocol.summary()
    assert 0 <= protocol.best_epoch_ < TRAIN.epochs
    assert summary["ZSL"] > 100 / 6, summary  # chance ZSL: 6 unseen test classes
    assert summary["HM"] > 0, summary
