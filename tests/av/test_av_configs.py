"""The 12 AVCA/TCaF paper configs validate strictly and carry the published values."""

from __future__ import annotations

import pytest

from lowshot.config.paper import load_paper_config
from lowshot.config.schema import from_dict
from lowshot.methods.av.avca import AVCA, AVCAConfig
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.recipes.gzsl_config import ExperimentConfig

SETTINGS = [
    f"{ds}_{split}" for ds in ("ucf", "activitynet", "vggsound") for split in ("main", "cls")
]
METHODS = {"avca": (AVCA, AVCAConfig), "tcaf": (TCaF, TCaFConfig)}


@pytest.mark.parametrize("family", sorted(METHODS))
@pytest.mark.parametrize("setting", SETTINGS)
def test_config_validates_strictly(family: str, setting: str) -> None:
    raw = load_paper_config(f"{family}.{setting}")
    exp = from_dict(ExperimentConfig, raw, where=f"{family}.{setting}")
    assert exp.recipe == "gzsl" and exp.method == family
    model = from_dict(METHODS[family][1], exp.model, where=f"{family}.{setting}.model")
    assert isinstance(model, METHODS[family][1])
    assert exp.protocol.beta_grid == (0.0, 3.0, 16)
    assert exp.data.text == ("fasttext",)
    suffix = "_features" if family == "avca" else "_features_non_averaged"
    assert exp.data.feature_dir == exp.data.split + suffix
    assert exp.provenance.paper and exp.provenance.notes
    if family == "avca" or exp.data.split == "cls":
        assert set(exp.provenance.expected) == {"S", "U", "HM", "ZSL"}
        e = exp.provenance.expected
        assert (
            abs(2 * e["S"] * e["U"] / (e["S"] + e["U"]) - e["HM"]) < 0.02
        )  # the table is self-consistent


def test_published_values_spot_checks() -> None:
    ucf = from_dict(ExperimentConfig, load_paper_config("tcaf.ucf_cls"))
    assert (ucf.train.lr, ucf.train.batch_size, ucf.train.n_batches) == (7e-5, 64, 300)
    assert ucf.model["depth"] == 6 and ucf.model["seqlen_mode"] == "max"
    anet = from_dict(ExperimentConfig, load_paper_config("tcaf.activitynet_cls"))
    assert anet.model["seqlen_mode"] == "fixed" and anet.model["transformer_dropout"] == 0.4
    vgg = from_dict(ExperimentConfig, load_paper_config("avca.vggsound_main"))
    assert vgg.train.batch_size == 64 and vgg.model["additional_dropout"] == 0.1
    assert (
        from_dict(ExperimentConfig, load_paper_config("avca.ucf_cls")).model["bn_momentum"] == 0.99
    )


def test_unknown_model_key_is_rejected() -> None:
    from lowshot.errors import ConfigError

    raw = load_paper_config("tcaf.ucf_cls")
    raw["model"]["use_self_attention"] = True
    with pytest.raises(ConfigError, match="unknown key 'use_self_attention'"):
        from_dict(TCaFConfig, raw["model"])
