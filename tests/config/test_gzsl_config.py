"""Strict configs: unknown keys, wrong types, overrides, every paper setting validates."""

from dataclasses import dataclass
from typing import Literal

import pytest

from lowshot.config import apply_overrides, from_dict
from lowshot.config.paper import load_paper_config, paper_config_names
from lowshot.errors import ConfigError
from lowshot.recipes.gzsl import parse_experiment


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    inner: Inner = Inner()
    seeds: tuple[int, ...] = (1,)
    name: str | None = None


def test_unknown_key_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown key 'lrr' in cfg.inner; did you mean 'lr'\?"):
        from_dict(Outer, {"inner": {"lrr": 1}}, where="cfg")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"inner": {"lr": "fast"}}, "expected a number"),
        ({"inner": {"mode": "c"}}, "is not one of"),
        ({"seeds": [1, "x"]}, r"seeds\[1\]: expected an integer"),
        ({"inner": 3}, "expected a mapping"),
    ],
)
def test_wrong_types_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data, where="cfg")


def test_overrides_parse_yaml_scalars_and_nested_keys():
    data = apply_overrides({"inner": {"lr": 1.0}}, ["inner.lr=1e-4", "seeds=[1,2,3]", "name=null"])
    cfg = from_dict(Outer, data)
    assert cfg.inner.lr == pytest.approx(1e-4) and cfg.seeds == (1, 2, 3) and cfg.name is None
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["inner.lr"])


def test_unknown_override_key_is_rejected_by_the_schema():
    config = load_paper_config("clipclap.ucf", ["train.epochz=3"])
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        parse_experiment(config)
    config = load_paper_config("clipclap.ucf", ["model.modality=audoi"])
    with pytest.raises(ConfigError, match="did you mean 'audio'"):
        parse_experiment(config)


def test_unknown_setting_did_you_mean():
    with pytest.raises(ConfigError, match="did you mean 'clipclap.ucf'"):
        load_paper_config("clipclap.ucff")


GZSL_SETTINGS = [n for n in paper_config_names() if load_paper_config(n)["recipe"] == "gzsl"]


@pytest.mark.parametrize("name", GZSL_SETTINGS)
def test_every_gzsl_paper_setting_validates(name):
    exp, _ = parse_experiment(load_paper_config(name))
    if not name.startswith("demo."):
        assert exp.provenance.paper, "paper settings carry provenance"
        if exp.provenance.table:  # settings without published numbers say so in their notes
            # the main tables print S/U/HM/ZSL; some ablation tables print only HM and ZSL
            full = exp.provenance.table in ("2.2", "A.1", "3.1", "5.1")
            assert set(exp.provenance.expected) >= ({"S", "U"} if full else set()) | {"HM", "ZSL"}
        else:
            assert not exp.provenance.expected and exp.provenance.notes
