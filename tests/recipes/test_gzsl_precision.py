"""``train.precision``: bf16 autocast in the training step, fp32 weights, losses and scores.

The same test runs one tiny epoch of ClipClap, AVCA and TCaF on CUDA (fp32 and bf16) when a
GPU is present, and skips there otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from av_tiny import tiny_spec

from lowshot.config.schema import from_dict
from lowshot.methods.av.avca import AVCA, AVCAConfig
from lowshot.methods.av.clipclap import ClipClap, ClipClapConfig
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.recipes.gzsl import input_spec
from lowshot.recipes.gzsl_config import TrainConfig
from lowshot.recipes.gzsl_trainer import MethodTrainer

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = dict(epochs=1, batch_size=8, n_batches=2, lr=1e-3, eval_batch_size=16, progress=False)


def _methods(tiny_temporal, tiny_averaged, clipclap_bench) -> dict:
    return {
        "clipclap": (lambda: ClipClap(ClipClapConfig(model_dim=16, hidden_dim=12, out_dim=8), input_spec(clipclap_bench)), clipclap_bench),
        "avca": (lambda: AVCA(AVCAConfig(dim=16, encoder_hidden=16, decoder_hidden=16, dim_out=8, depth=1, heads=2, dim_head=4, mlp_dim=8), tiny_spec(temporal=False)), tiny_averaged),
        "tcaf": (lambda: TCaF(TCaFConfig(dim=16, encoder_hidden=16, decoder_hidden=16, dim_out=8, pos_dim=8, depth=1, heads=2, dim_head=4, mlp_dim=8), tiny_spec()), tiny_temporal),
    }  # fmt: skip


@pytest.fixture(scope="module")
def clipclap_bench():
    from lowshot.data.av.synth import make_synthetic_benchmark

    return make_synthetic_benchmark(preset="clipclap", dataset="UCF", seed=0, size=0.02)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("name", ["clipclap", "avca", "tcaf"])
def test_bf16_trains_under_autocast_with_fp32_weights_losses_and_scores(
    name: str, device: str, tiny_temporal, tiny_averaged, clipclap_bench
) -> None:
    build, bench = _methods(tiny_temporal, tiny_averaged, clipclap_bench)[name]
    results = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        method = build()
        trainer = MethodTrainer(
            method, bench, 1, TrainConfig(**TRAIN, precision=precision), 0, torch.device("cpu")
        )
        linear_dtypes, loss_dtypes = set(), set()
        hooks = [m.register_forward_hook(lambda _m, _i, o, _d=linear_dtypes: _d.add(o.dtype))
                 for m in method.modules() if isinstance(m, torch.nn.Linear)]  # fmt: skip
        original = trainer.loss_fn  # what the trainer calls (method.training_loss in one process)

        def training_loss(*args, _original=original, _dtypes=loss_dtypes):
            out = _original(*args)
            _dtypes.update(t.dtype for t in [out["loss"], *out["loss_terms"].values()])
            return out

        trainer.loss_fn = training_loss
        losses = trainer.train_epoch(0)
        for h in hooks:
            h.remove()
        assert all(np.isfinite(v) for v in losses.values())
        assert {p.dtype for p in method.parameters()} == {torch.float32}  # fp32 master weights
        assert {p.device.type for p in method.parameters()} == {device}
        assert loss_dtypes == {torch.float32}  # losses in fp32 also under autocast
        expected = torch.bfloat16 if precision == "bf16" else torch.float32
        assert linear_dtypes == {expected}
        scores = trainer.scores(bench.splits["stage_2_test_unseen"])
        assert scores.dtype == np.float32 and np.isfinite(scores).all()
        results[precision] = losses["loss"]
    assert results["bf16"] != results["fp32"]  # the bf16 step really differs


def test_precision_is_validated() -> None:
    assert TrainConfig().precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        from_dict(TrainConfig, {"precision": "fp16"})
