"""``train.seed_batched``: seeds trained as one stacked model give each seed the results, selection,
LR schedule, history and checkpoints of its separate run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lowshot.config.paper import load_paper_config
from lowshot.errors import ConfigError
from lowshot.recipes.gzsl import run_gzsl
from lowshot.utils import seed_streams
from lowshot.utils.io import load_state

pytestmark = pytest.mark.usefixtures("one_thread")

SEEDS = (1, 2, 3)
#: tiny ClipClap whose seeds select different epochs and drop the LR at different epochs
CLIPCLAP = [
    "data.synthetic=clipclap", "data.synthetic_size=0.06", "model.model_dim=32", "model.hidden_dim=16",
    "model.out_dim=8", "train.epochs=4", "train.n_batches=6", "train.batch_size=32", "train.lr=3e-3",
    "train.lr_patience=0", "train.progress=false", f"train.seeds=[{','.join(map(str, SEEDS))}]",
]  # fmt: skip


#: the image-ZSL baselines (dropout on the inputs and on the class embeddings)
COMPAT = [
    "data.synthetic=cls_averaged", "data.synthetic_size=0.03", "train.epochs=3", "train.n_batches=4",
    "train.batch_size=32", "train.lr_scheduler=true", "train.lr_patience=0", "train.progress=false",
    f"train.seeds=[{','.join(map(str, SEEDS))}]",
]  # fmt: skip


def _run(tmp: Path, batched: bool, setting: str = "clipclap.ucf", overrides: list[str] = CLIPCLAP) -> Path:
    run_gzsl(load_paper_config(setting, [*overrides, f"train.seed_batched={str(batched).lower()}"]), tmp)
    return tmp


def _differences(a: Path, b: Path) -> list[str]:
    """What differs between the per-seed outputs of two run directories (empty: identical)."""
    out = []
    for s in SEEDS:
        ra, rb = (json.loads((d / f"seed_{s}" / "result.json").read_text()) for d in (a, b))
        out += [f"seed {s} {k}" for k in ra if ra[k] != pytest.approx(rb[k], abs=1e-9)]
        ha, hb = (json.loads((d / f"seed_{s}" / "history.json").read_text()) for d in (a, b))
        if len(ha) != len(hb):
            out.append(f"seed {s} history length")
        out += [f"seed {s} history {i}" for i, (x, y) in enumerate(zip(ha, hb)) if x != pytest.approx(y)]
        for name in ("stage1_best_model", "final_model"):
            wa, wb = (load_state(d / f"seed_{s}" / "checkpoints" / f"{name}.safetensors") for d in (a, b))
            assert wa.keys() == wb.keys()
            out += [f"seed {s} {name} {k}" for k in wa if not torch.allclose(wa[k].double(), wb[k].double(), atol=1e-6)]
    return out


@pytest.fixture(scope="module")
def separate(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("separate") / "run", False)


def test_seed_batched_clipclap_equals_separate_runs(separate: Path, tmp_path) -> None:
    batched = _run(tmp_path / "run", True)
    results = [json.loads((separate / f"seed_{s}" / "result.json").read_text()) for s in SEEDS]
    # the case covers what makes batching hard: per-seed selected epochs and LR-drop epochs differ
    assert len({r["best_epoch"] for r in results}) > 1
    assert len({tuple(r["lr_drop_epochs"]) for r in results}) > 1
    assert _differences(separate, batched) == []
    summary = [json.loads((d / "result.json").read_text()) for d in (separate, batched)]
    for key in ("per_seed", "metrics", "extra"):  # mean +- std over seeds, selected epochs and betas
        assert summary[0][key] == summary[1][key]


def test_seed_batched_bf16_equals_separate_runs(tmp_path) -> None:
    """Under ``train.precision=bf16`` too (autocast reaches the per-seed layers)."""
    bf16 = [*CLIPCLAP, "train.precision=bf16", "train.epochs=2"]
    runs = [_run(tmp_path / str(b), b, "clipclap.ucf", bf16) for b in (False, True)]
    assert _differences(*runs) == []


def test_shared_dropout_stream_is_detected(separate: Path, tmp_path, monkeypatch) -> None:
    """The equality above is no accident: with every seed drawing from seed 0's stream it fails."""
    use = seed_streams.SeedStreams.use
    monkeypatch.setattr(seed_streams.SeedStreams, "use", lambda self, seed: use(self, 0))
    assert _differences(separate, _run(tmp_path / "run", True))


def test_seed_batched_resumes_a_killed_run(separate: Path, tmp_path, monkeypatch) -> None:
    """Killed after a few epochs (seeds one epoch apart), the rerun finishes with the separate runs' results."""
    from lowshot.protocols import gzsl as protocol

    end = protocol.TwoStageProtocol._end_stage1_epoch
    calls = []

    def killing(self, *args):
        calls.append(1)
        if len(calls) == 5:  # seed 2 of epoch 1: seed 1 is one epoch ahead of seeds 2 and 3
            raise KeyboardInterrupt
        return end(self, *args)

    monkeypatch.setattr(protocol.TwoStageProtocol, "_end_stage1_epoch", killing)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "run", True)
    monkeypatch.setattr(protocol.TwoStageProtocol, "_end_stage1_epoch", end)
    assert _differences(separate, _run(tmp_path / "run", True)) == []


@pytest.mark.parametrize("method", ["ale", pytest.param("sje", marks=pytest.mark.slow), pytest.param("devise", marks=pytest.mark.slow)])
def test_seed_batched_compat_baselines_equal_separate_runs(method: str, tmp_path) -> None:
    runs = [_run(tmp_path / str(b), b, f"{method}.ucf_cls", COMPAT) for b in (False, True)]
    assert _differences(*runs) == []


@pytest.mark.parametrize(("setting", "preset"), [("avca.ucf_cls", "cls_averaged"), ("tcaf.ucf_cls", "cls_temporal")])
def test_methods_without_seed_batching_are_rejected(setting: str, preset: str, tmp_path) -> None:
    config = load_paper_config(setting, [f"data.synthetic={preset}", "train.seed_batched=true"])
    with pytest.raises(ConfigError, match=f"train.seed_batched: method '{setting.split('.')[0]}' does not support"):
        run_gzsl(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_gfsl_recipe_refuses_seed_batching(tmp_path) -> None:
    from lowshot.recipes.gfsl import run_gfsl

    config = load_paper_config("avdiff.ucf_5shot", ["data.synthetic=kshot", "train.seed_batched=true"])
    with pytest.raises(ConfigError, match="train.seed_batched: the gfsl recipe"):
        run_gfsl(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
