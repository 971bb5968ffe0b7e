"""The one method contract: every registered method is a ``Method`` of one family, and a
recipe refuses another family's method with a clear error (not a constructor TypeError)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

import lowshot.methods  # noqa: F401  (registers every method)
from lowshot._registry import METHODS
from lowshot.errors import ConfigError
from lowshot.methods.adverbs.base import AdverbMethod
from lowshot.methods.base import FAMILY_NAMES, Family, GZSLMethod, Method
from lowshot.recipes.adverbs import run_adverbs
from lowshot.recipes.gzsl import parse_experiment

FAMILY_BASES = {"av_gzsl": GZSLMethod, "adverbs": AdverbMethod}


@pytest.mark.parametrize("name", METHODS.names())
def test_every_registered_method_fulfils_the_contract(name: str) -> None:
    cls = METHODS.get(name)
    assert isinstance(cls, type) and issubclass(cls, Method), name
    assert cls.family in typing.get_args(Family), name
    assert issubclass(cls, FAMILY_BASES[cls.family]), name
    assert dataclasses.is_dataclass(cls.Config), name
    for hook in ("training_loss", "param_groups", "build_optimizer", "on_epoch_start", "after_step", "state_dict"):
        assert callable(getattr(cls, hook)), (name, hook)


def test_both_families_are_registered_and_named() -> None:
    families = {METHODS.get(n).family for n in METHODS.names()}
    assert {"av_gzsl", "adverbs"} <= families
    assert set(FAMILY_NAMES) == set(typing.get_args(Family))


def test_gzsl_recipe_refuses_an_adverb_method() -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiment({"recipe": "gzsl", "name": "x", "method": "adverbs.regada", "model": {}})
    msg = str(err.value)
    assert "'adverbs.regada' is a video-adverb (adverbs) method" in msg
    assert "the gzsl recipe needs an audio-visual GZSL (av_gzsl) method" in msg


def test_adverbs_recipe_refuses_a_gzsl_method(tmp_path: Path) -> None:
    cfg = {"recipe": "adverbs", "name": "x", "method": "clipclap", "model": {}, "data": {"dataset": "vatex"}}
    with pytest.raises(ConfigError, match="'clipclap' is an audio-visual GZSL .* the adverbs recipe needs a video-adverb"):
        run_adverbs(cfg, tmp_path / "run", tmp_path)
    assert not (tmp_path / "run").exists()


def test_unknown_method_still_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'clipclap'"):
        parse_experiment({"recipe": "gzsl", "name": "x", "method": "clipclapp", "model": {}})
