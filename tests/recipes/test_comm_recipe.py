"""The comm recipe: config validation through the registries, seed aggregation, data root."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")

from lowshot.errors import ConfigError, DataError  # noqa: E402
from lowshot.recipes.comm import comm_result, load_config, run_dataset  # noqa: E402
from lowshot.utils.paths import ENV_DATA_ROOT  # noqa: E402


def _run(seed: int, algo: str, before: float, after: float, miou: float | None = None) -> dict:
    def metrics(success: float) -> dict:
        m = {"success_rate": success, "color_word_rate": 1.0 - success}
        return m if miou is None else {**m, "miou": miou}

    return {"seed": seed, "algorithm": algo, "listener": "grayscale", "before": metrics(before),
            "after": metrics(after)}


def test_summary_is_mean_and_std_over_seeds():
    cfg = load_config({"name": "x", "algorithms": {"kto": {}, "ppo": {}}})
    res = comm_result(cfg, [_run(0, "kto", 0.5, 0.75), _run(1, "kto", 0.5, 0.25),
                            _run(0, "ppo", 0.25, 1.0, miou=0.5)])
    m = res.metrics
    assert res.family == "comm" and res.seeds == (0, 1) and res.unit == "fraction"
    assert m["kto/grayscale/success_before"].per_seed == {"0": 0.5, "1": 0.5}
    assert m["kto/grayscale/success_before"].mean == 0.5 and m["kto/grayscale/success_before"].std == 0.0
    assert m["kto/grayscale/success_after"].mean == 0.5 and m["kto/grayscale/success_after"].std == 0.25
    assert m["kto/grayscale/color_after"].mean == 0.5 and m["kto/grayscale/color_after"].std == 0.25
    assert "kto/grayscale/miou_after" not in m
    assert m["ppo/grayscale/miou_after"].mean == 0.5 and m["ppo/grayscale/miou_after"].std == 0.0


def test_unknown_algorithm_is_refused_with_a_suggestion():
    # before the ALGORITHMS registry an unknown key silently ran PPO
    with pytest.raises(ConfigError, match=r"unknown algorithm 'kot'; did you mean 'kto'\?"):
        load_config({"name": "x", "algorithms": {"kot": {}}})


def test_unknown_world_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown world 'clever'; did you mean 'clevr'\?"):
        load_config({"name": "x", "world": "clever"})


def test_registered_worlds_decide_what_a_world_needs():
    with pytest.raises(ConfigError, match=r"world 'cub' does not play game 'res' \(it plays: rei\)"):
        load_config({"name": "x", "world": "cub", "game": "res",
                     "algorithms": {"kto": {"binary_ge": True, "desirable_threshold": 0.5}}})


def test_dataset_world_data_root_follows_the_one_rule(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DATA_ROOT, raising=False)
    cfg = load_config({"name": "x", "world": "cub"})
    with pytest.raises(DataError, match=r"world 'cub' needs a data root: pass --data-root DIR, set data.root"):
        run_dataset(cfg, None, None)
    monkeypatch.setenv(ENV_DATA_ROOT, str(tmp_path))  # a folder, but the config's root wins
    cfg = load_config({"name": "x", "world": "cub", "data": {"root": str(tmp_path / "nope")}})
    with pytest.raises(DataError, match=r"nope \(from data.root\) is not a folder"):
        run_dataset(cfg, None, None)


def test_agent_families_come_from_one_registry():
    # before: an unknown listener family fell through `!= "pixel"` into load_mllm at run time
    with pytest.raises(ConfigError, match=r"listener.family: unknown agent family 'pixl'; did you mean 'pixel'\?"):
        load_config({"name": "x", "listener": {"family": "pixl"}})
    with pytest.raises(ConfigError, match=r"agent family 'tiny_lm' cannot be a listener"):
        load_config({"name": "x", "listener": {"family": "tiny_lm"}})
    with pytest.raises(ConfigError, match=r"synthetic world trains its own tiny_lm speaker, not 'llava'"):
        load_config({"name": "x", "speaker": {"family": "llava", "path": "m"}})
    assert load_config({"name": "x", "world": "cub", "listener": {"family": "qwen2_vl"}}).listener.family == "qwen2_vl"


def test_games_are_registered_components():
    # before: `game` was a Literal and World branched on `game == "res"`
    from lowshot.comm.games import GAMES
    from lowshot.comm.world import World, WorldConfig

    assert GAMES.names() == ["rei", "res"]
    with pytest.raises(ConfigError, match=r"game: unknown game 'rse'; did you mean 'res'\?"):
        load_config({"name": "x", "game": "rse"})
    world = World(WorldConfig.tiny(), 0, "res")
    assert world.game("normal").metric == "miou" and world.rules.segments
