"""The ``adverbs`` recipe: learning on synthetic data, resume, seeds, protocols, config errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lowshot.config.paper import load_paper_config, paper_config_names
from lowshot.errors import ConfigError, DataError
from lowshot.recipes.adverbs import run_adverbs
from lowshot.utils.results import read_result

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {
    "emb_dim": 16,
    "heads": 2,
    "layers_gated": 2,
    "layers_residual": 2,
    "text_dropout": 0.2,
    "lambda_adv": 2.0,
}


def _cfg(method: str = "adverbs.regada", model: dict | None = None, **sections) -> dict:
    cfg = {
        "recipe": "adverbs",
        "name": "test",
        "method": method,
        "model": SMALL if model is None and method == "adverbs.regada" else (model or {}),
        "data": {"dataset": "vatex", "trust_pickle": True, "video_dim": 16, "joint_dim": 8},
        "train": {"epochs": 4, "batch_size": 32, "lr": 3e-3, "eval_interval": 2, "seeds": [0]},
        "protocol": {"selection": "last"},
    }
    for k, v in sections.items():
        cfg[k] = cfg.get(k, {}) | v
    return cfg


def test_run_dir_contents_and_published_protocol(synth_root: Path, tmp_path: Path) -> None:
    res = run_adverbs(_cfg(protocol={"selection": "best_per_metric"}), tmp_path / "r", synth_root)
    for f in (
        "config.yaml",
        "env.json",
        "history.jsonl",
        "result.json",
        "checkpoints/train.json",
    ):
        assert (tmp_path / "r" / f).exists(), f
    assert res.selection.startswith("test-selected (published)")
    assert set(res.metrics) == {"map_w", "map_m", "acc_a"}
    assert res.extra["data_report"]["clips_in_train_and_test"] > 0  # synthetic overlap is reported, kept
    hist = [json.loads(x) for x in (tmp_path / "r" / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [0, 1, 2, 3, 4]
    assert [h["epoch"] for h in hist if "test" in h] == [0, 2, 4]
    best = max(h["test"]["map_m"] for h in hist if "test" in h)
    assert res.means()["map_m"] == pytest.approx(best)


def test_a_kill_after_training_leaves_no_result_that_is_not_the_run_result(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single-seed run writes result.json once: the run's result (never a seed record first)."""
    import lowshot.recipes.adverbs as recipe

    def killed(**_: object) -> None:
        raise KeyboardInterrupt  # killed after the seed finished, before the run's result

    monkeypatch.setattr(recipe, "make_result", killed)
    with pytest.raises(KeyboardInterrupt):
        run_adverbs(_cfg(train={"epochs": 2}), tmp_path / "r", synth_root)
    assert not (tmp_path / "r" / "result.json").exists()
    monkeypatch.undo()
    resumed = run_adverbs(_cfg(train={"epochs": 2}), tmp_path / "r", synth_root)
    assert read_result(tmp_path / "r") == resumed


@pytest.mark.parametrize("selection", ["last", "validation"])
def test_resume_after_kill_matches_uninterrupted_run(
    synth_root: Path, tmp_path: Path, selection: str
) -> None:
    cfg = _cfg(
        train={"epochs": 5, "eval_interval": 2, "checkpoint_interval": 2},
        protocol={"selection": selection},
    )
    full = run_adverbs(cfg, tmp_path / "full", synth_root)
    stopped = run_adverbs(cfg, tmp_path / "killed", synth_root, stop_after_epoch=3)
    assert stopped is None and not (tmp_path / "killed" / "result.json").exists()
    # epoch 3 was logged after the epoch-2 checkpoint: it is redone on resume
    resumed = run_adverbs(cfg, tmp_path / "killed", synth_root)
    assert resumed.means() == pytest.approx(full.means())

    def lines(run: str, name: str) -> list[dict]:
        text = (tmp_path / run / name).read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in text]

    histories = ["history.jsonl"] + (["select/history.jsonl"] if selection == "validation" else [])
    for name in histories:
        assert lines("full", name) == lines("killed", name), name


def test_resume_refuses_a_different_config(synth_root: Path, tmp_path: Path) -> None:
    run_adverbs(_cfg(method="adverbs.priors"), tmp_path / "r", synth_root)
    with pytest.raises(ConfigError, match="different config"):
        run_adverbs(_cfg(method="adverbs.s3d_pretrained"), tmp_path / "r", synth_root)


def test_multi_seed_mean_std_and_validation_protocol(synth_root: Path, tmp_path: Path) -> None:
    cfg = _cfg(
        train={"epochs": 2, "seeds": [0, 1]},
        protocol={"selection": "validation", "val_fraction": 0.2},
    )
    res = run_adverbs(cfg, tmp_path / "r", synth_root)
    assert set(res.per_seed) == {"0", "1"} and res.seeds == (0, 1)
    assert (tmp_path / "r" / "seed_1" / "result.json").exists()
    vals = [r["acc_a"] for r in res.per_seed.values()]
    assert res.metrics["acc_a"].mean == pytest.approx(sum(vals) / 2)
    assert res.metrics["acc_a"].std == pytest.approx(abs(vals[0] - vals[1]) / 2)
    assert res.metrics["acc_a"].per_seed == {"0": vals[0], "1": vals[1]}
    assert res.selection.startswith(
        "validation-selected epoch (val mean(map_w, map_m, acc_a) on 20"
    )
    assert '"val"' in (tmp_path / "r" / "seed_0" / "select" / "history.jsonl").read_text()


def test_default_selects_on_validation_then_refits_on_all_training_clips(
    synth_root: Path, tmp_path: Path
) -> None:
    """Nothing is selected on test by default: stage 1 picks the epoch E on a validation
    split carved from train; stage 2 refits a fresh model on all training clips for epochs
    0..E and evaluates test once. The result is therefore exactly that of ``fixed_epoch`` E
    (same seed, same initial weights, every training clip)."""
    from lowshot.protocols.adverbs import best_validation_epoch
    from lowshot.recipes.adverbs_config import ProtocolConfig

    assert ProtocolConfig().selection == "validation"
    cfg = _cfg(train={"epochs": 6, "eval_interval": 2})
    del cfg["protocol"]
    res = run_adverbs(cfg, tmp_path / "r", synth_root)
    read = lambda p: [json.loads(x) for x in p.read_text().splitlines()]  # noqa: E731
    stage1 = read(tmp_path / "r" / "select" / "history.jsonl")
    assert not any("test" in h for h in stage1)  # test never looked at while selecting
    assert [h["epoch"] for h in stage1 if "val" in h] == [0, 2, 4, 6]
    metrics = ("map_w", "map_m", "acc_a")
    chosen = best_validation_epoch(stage1, metrics, None)
    stage2 = read(tmp_path / "r" / "history.jsonl")
    assert [h["epoch"] for h in stage2] == list(range(chosen + 1))
    assert [h["epoch"] for h in stage2 if "test" in h] == [chosen]  # test evaluated once
    assert not any("val" in h for h in stage2)
    seed = res.extra["seed_details"]["0"]
    assert seed["epochs"] == dict.fromkeys(metrics, chosen)
    assert seed["val_metrics"] == next(h["val"] for h in stage1 if h["epoch"] == chosen)
    assert res.selection == (
        "validation-selected epoch (val mean(map_w, map_m, acc_a) on 10% of train clips), "
        "refit on train"
    )
    fixed = run_adverbs(
        cfg | {"protocol": {"selection": "fixed_epoch", "epoch": chosen}},
        tmp_path / "f",
        synth_root,
    )
    assert res.means() == pytest.approx(fixed.means(), abs=1e-12)
    # fixed_epoch stops training at its epoch
    assert len(read(tmp_path / "f" / "history.jsonl")) == chosen + 1


def test_unseen_and_no_antonym_metrics(synth_root: Path, tmp_path: Path) -> None:
    res = run_adverbs(_cfg(train={"epochs": 1}, data={"unseen": True}), tmp_path / "u", synth_root)
    assert set(res.metrics) == {"acc_a_cls"}
    res = run_adverbs(
        _cfg(train={"epochs": 1}, data={"use_antonyms": False}), tmp_path / "n", synth_root
    )
    assert set(res.metrics) == {"map_w", "map_m"}
    res = run_adverbs(
        _cfg(method="adverbs.priors", protocol={"no_action_gt": True}), tmp_path / "p", synth_root
    )
    assert "no_act/map_w" in res.extra["seed_details"]["0"]["other_metrics"]
    assert res.selection == "none (training-free)"


def test_config_errors(synth_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'lambda_adv'"):
        run_adverbs(_cfg(model=SMALL | {"lamda_adv": 1.0}), tmp_path / "a", synth_root)
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        run_adverbs(_cfg() | {"trian": {}}, tmp_path / "b", synth_root)
    with pytest.raises(ConfigError, match="unknown method"):
        run_adverbs(_cfg(method="adverbs.regadda"), tmp_path / "c", synth_root)
    with pytest.raises(DataError, match="data root"):
        run_adverbs(_cfg(), tmp_path / "d", None)
    shutil.copytree(synth_root / "splits", tmp_path / "only_splits" / "splits")
    with pytest.raises(DataError, match=r"feature file not found: .*VATEX_Adverbs.*train\.pth"):
        run_adverbs(_cfg(), tmp_path / "e", tmp_path / "only_splits")
    assert not (tmp_path / "e").exists()


def test_paper_configs_validate() -> None:
    from lowshot.config import from_dict
    from lowshot.methods.adverbs.base import method_class
    from lowshot.recipes.adverbs_config import AdverbsConfig

    names = [n for n in paper_config_names() if n.split(".")[0] in ("regada", "adverbs_baselines")]
    for ds in ("howto100m", "air", "activitynet", "msrvtt", "vatex"):
        assert f"regada.{ds}" in names
    for ds in ("vatex", "activitynet", "msrvtt"):
        assert f"regada.{ds}_unseen" in names
    for name in names:
        raw = load_paper_config(name)
        cfg = from_dict(AdverbsConfig, raw, where=name)
        from_dict(method_class(cfg.method).Config, cfg.model, where=f"{name}.model")
        assert cfg.provenance.expected and cfg.provenance.table
        if method_class(cfg.method).trainable:  # published numbers were selected on test
            assert "Expected numbers are test-selected" in cfg.provenance.notes, name
            assert cfg.protocol.selection == "validation", name  # never test-selected by default
    vatex = from_dict(AdverbsConfig, load_paper_config("regada.vatex"), where="x")
    assert (
        vatex.model["lambda_adv"] == 2.0
        and vatex.train.epochs == 2000
        and vatex.train.batch_size == 512
    )


@pytest.mark.data
def test_priors_config_reproduces_on_shared_splits(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "adverbs"
    res = run_adverbs(load_paper_config("adverbs_baselines.priors_msrvtt"), tmp_path / "p", root)
    got = {k: round(v * 100, 1) for k, v in res.means().items()}
    assert got == res.expected


@pytest.mark.slow
def test_regada_beats_priors_and_chance_over_seeds(synth_root: Path, tmp_path: Path) -> None:
    """Honest comparison (last epoch, no test-set selection) on learnable synthetic data."""
    for seed in (0, 1):
        cfg = _cfg(train={"epochs": 25, "eval_interval": 25, "seeds": [seed]})
        regada = run_adverbs(cfg, tmp_path / f"regada{seed}", synth_root).means()
        priors = run_adverbs(_cfg(method="adverbs.priors"), tmp_path / f"priors{seed}", synth_root).means()
        assert regada["map_m"] > priors["map_m"], (seed, regada, priors)
        assert regada["acc_a"] > max(priors["acc_a"], 0.5), (seed, regada, priors)


def test_synthetic_data_from_config(tmp_path: Path) -> None:
    cfg = _cfg(method="adverbs.s3d_pretrained")
    cfg["data"] = cfg["data"] | {
        "synthetic": {
            "n_clips": 80,
            "n_adverb_pairs": 2,
            "n_actions": 3,
            "video_dim": 16,
            "joint_dim": 8,
        }
    }
    res = run_adverbs(cfg, tmp_path / "r", None)  # no data root needed: generated in the run dir
    assert (tmp_path / "r" / "data" / "synth_manifest.json").exists() and 0 <= res.means()["acc_a"] <= 1
    with pytest.raises(ConfigError, match="n_clip"):
        bad = _cfg(method="adverbs.priors")
        bad["data"] = bad["data"] | {"synthetic": {"n_clip": 80}}
        run_adverbs(bad, tmp_path / "bad", None)
