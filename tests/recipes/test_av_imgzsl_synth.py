"""Image-ZSL baselines through the recipe, and issue 11's done-when for them: on the built-in
synthetic UCF-cls data (``lowshot data synth`` preset ``cls_averaged``), each linear baseline,
with its published UCF setting and a shortened schedule (the same for all), beats chance ZSL
on seeds 42, 43 and 44, and so does f-VAEGAN-D2 with its own shortened schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from av_tiny import RECIPE_SMOKE

from lowshot.config.paper import load_paper_config
from lowshot.data.av.synth import make_synthetic_benchmark
from lowshot.methods.base import GZSLMethod, method_of_family
from lowshot.protocols.calibration import beta_grid
from lowshot.protocols.gzsl import TwoStageProtocol
from lowshot.recipes.gzsl import input_spec, load_final_method, parse_experiment, run_gzsl
from lowshot.recipes.gzsl_trainer import MethodTrainer
from lowshot.utils.seed import seed_everything

pytestmark = pytest.mark.usefixtures("one_thread")

#: the shortened schedule, the same for every linear baseline, at their published learning rate
#: (1e-3; measured in docs/benchmarks.md)
SCHEDULE = [
    "train.epochs=4",
    "train.n_batches=50",
    "train.batch_size=128",
    "train.lr_scheduler=false",
    "train.progress=false",
]
#: f-VAEGAN-D2 (generative; its own schedule, below): the published UCF values on the cls data, with
#: the published effective critic/generator ratio of 1 (the published loop trains one critic and one
#: generator step per "epoch") and ``syn_num`` near the real per-class count of this 0.1-size data
FVAEGAN_SCHEDULE = [
    "train.epochs=3",
    "train.n_batches=100",
    "train.progress=false",
    "model.critic_iter=1",
    "model.syn_num=20",
]
SETTINGS = {"ale": "ale.ucf_cls", "sje": "sje.ucf_cls", "devise": "devise.ucf_cls", "apn": "apn.ucf_cls"}


@pytest.fixture(scope="module")
def ucf_cls():
    return make_synthetic_benchmark("cls_averaged", "UCF", seed=0, size=0.1, split="cls")


@pytest.mark.parametrize(
    ("setting", "extra"),
    [
        ("apn.ucf_cls", ["data.synthetic=cls_averaged"]),
        ("fvaegan_d2.ucf_main", ["data.synthetic=main_averaged", "model.syn_num=10", "model.classifier_epochs=2", "model.latent_dim=16",
                                 "model.encoder_hidden=16", "model.generator_hidden=32", "model.critic_hidden=32"]),
    ],
)
def test_paper_config_runs_through_the_recipe_and_reloads(setting: str, extra: list[str], tmp_path) -> None:
    config = load_paper_config(setting, [*RECIPE_SMOKE, *extra])
    summary = run_gzsl(config, tmp_path / "run")
    for key in ("S", "U", "HM", "ZSL"):
        assert 0.0 <= summary.metrics[key].mean <= 100.0
    assert summary.expected["HM"] > 0
    _, method, bench = load_final_method(tmp_path / "run")
    assert method.class_scores(
        method.collate(bench.splits["stage_2_test_unseen"], np.arange(4), None, False),
        torch.as_tensor(bench.class_embeddings),
    ).shape == (4, bench.num_classes)


def _zsl_per_seed(bench, setting: str, overrides: list[str]) -> tuple[float, dict[int, float]]:
    """Chance ZSL and the two-stage ZSL of ``setting`` on seeds 42, 43, 44."""
    exp, model_cfg = parse_experiment(load_paper_config(setting, overrides))
    cls = method_of_family(exp.method, GZSLMethod, "gzsl")
    chance = 100.0 / len(bench.split_classes["stage_2_test_unseen"])
    results = {}
    for seed in (42, 43, 44):
        def make_trainer(stage: int, seed: int = seed) -> MethodTrainer:
            seed_everything(seed + 1000 * stage)
            method = cls(model_cfg, input_spec(bench))
            return MethodTrainer(method, bench, stage, exp.train, seed, torch.device("cpu"))

        protocol = TwoStageProtocol(exp.train.epochs, beta_grid(*exp.protocol.beta_grid)).fit(bench, make_trainer)
        results[seed] = protocol.summary()["ZSL"]
    return chance, results


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_zsl_above_chance_on_every_seed(ucf_cls, name: str) -> None:
    chance, results = _zsl_per_seed(ucf_cls, SETTINGS[name], SCHEDULE)
    # measured with the balanced per-family input at the published lr 1e-3, seeds 42 / 43 / 44: ALE
    # 56.9 / 54.8 / 63.6, SJE 54.4 / 53.6 / 60.2, DEVISE 53.2 / 44.8 / 52.2, APN 59.6 / 56.4 / 60.3
    # (chance 16.7, 6 unseen test classes). At lr 2e-3 DEVISE seed 43 reached only 34.1, under one
    # test video above 2 x chance, so the schedule keeps the published lr (docs/benchmarks.md)
    assert all(z > 2 * chance for z in results.values()), (name, chance, results)


@pytest.mark.slow
def test_fvaegan_zsl_above_chance_on_every_seed(ucf_cls) -> None:
    chance, results = _zsl_per_seed(ucf_cls, "fvaegan_d2.ucf_main", FVAEGAN_SCHEDULE)
    # measured ZSL 29.1 / 39.5 / 47.0 on seeds 42 / 43 / 44 (chance 16.7; published loss scale: 22.9 / 15.8 / 16.8)
    assert all(z > 1.5 * chance for z in results.values()), (chance, results)
