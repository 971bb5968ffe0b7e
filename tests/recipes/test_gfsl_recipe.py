"""The gfsl recipe end to end on synthetic data of the released k-shot layout (tiny training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowshot.catalog import load_recipe
from lowshot.config.paper import load_paper_config
from lowshot.utils.results import read_result

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = [
    "data.synthetic=kshot", "data.synthetic_size=0.01", "data.shots=1", "train.epochs=1", "train.n_batches=2",
    "train.batch_size=8", "train.eval_batch_size=64", "protocol.epochs_fine_tune=1", "train.progress=false",
    "model.dim=16", "model.encoder_hidden=16", "model.decoder_hidden=16", "model.dim_out=8", "model.pos_dim=8",
    "model.depth=2", "model.attention_switch=1", "model.heads=2", "model.dim_head=4", "model.mlp_dim=16",
    "model.diffusion_steps=5", "model.generator_hidden=16",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["avdiff.ucf_5shot", "avdiff.ucf_5shot_wgan", "avdiff.ucf_5shot_avprot",
                                     "avdiff.ucf_5shot_audio", "avdiff.ucf_5shot_alternate"])  # fmt: skip
# avdiff.activitynet_1shot (fixed sequence mode) and avdiff.vggsound_1shot pass too with these
# overrides, but generating their synthetic trees takes minutes; they are not run here.
def test_settings_run_end_to_end(setting: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    config = load_paper_config(setting, SMALL)
    run = tmp_path_factory.mktemp("gfsl") / "run"
    summary = load_recipe("gfsl")(config, run)
    assert set(summary.metrics) == {"B", "N", "HM", "FSL"} and summary.family == "av_gfsl"
    assert summary.metrics["HM"].per_seed == {"42": summary.per_seed["42"]["HM"]}
    assert len(summary.extra["per_seed"]["42"]["per_draw"]) == 3
    assert summary.extra["benchmark"] == "UCF-FSL/1-shot" and summary.legacy == ()
    assert read_result(run) == summary  # what is written is what is returned
    assert (run / "seed_42" / "history.json").is_file() and (Path(run) / "config.yaml").is_file()
    assert load_recipe("gfsl")(config, run) == summary  # a finished run is not redone
