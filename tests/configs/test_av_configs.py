"""The AVCA/TCaF/ClipClap paper configs validate strictly and carry the published values."""

from __future__ import annotations

import re

import pytest

from lowshot.config.paper import load_paper_config, paper_config_names
from lowshot.config.schema import from_dict
from lowshot.methods.av.avca import AVCA, AVCAConfig
from lowshot.methods.av.tcaf import TCaF, TCaFConfig
from lowshot.recipes.gzsl_config import ExperimentConfig

pytestmark = pytest.mark.usefixtures("one_thread")

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


PARITY = {
    "tcaf": ("legacy_train_integer_time_pass",),
    "clipclap": ("legacy_train_extra_pass",),
}


@pytest.mark.parametrize(
    "name",
    [n for n in paper_config_names() if n.split(".")[0] in PARITY and load_paper_config(n)["recipe"] == "gzsl"],
)
def test_notes_name_the_parity_switches_and_they_apply(name: str) -> None:
    """Each TCaF/ClipClap note names the published-code switches (stage-2 scheduler included)
    and the overrides it names are valid for that setting."""
    from lowshot.recipes.gzsl import parse_experiment

    family = name.split(".")[0]
    raw = load_paper_config(name)
    exp, model = parse_experiment(raw)
    notes = exp.provenance.notes
    for switch in PARITY[family]:
        assert f"model.{switch}=true" in notes
    if family == "tcaf" and model.seqlen_mode == "fixed":
        assert "model.legacy_window_relative_time=true" in notes
    if exp.train.lr_scheduler:
        assert "protocol.stage2_scheduler=legacy_val_on_train" in notes
        assert "stage-2 LR drops replayed" in notes
    else:
        assert "protocol.stage2_scheduler has no effect" in notes
    overrides = re.findall(r"\b((?:model|data|protocol)\.\w+=\w+)", notes)
    assert overrides
    legacy_exp, legacy_model = parse_experiment(load_paper_config(name, overrides))
    for o in overrides:
        section, key_value = o.split(".", 1)
        key, value = key_value.split("=")
        got = getattr(legacy_model, key) if section == "model" else getattr(getattr(legacy_exp, section), key)
        assert str(got).lower() == value.lower(), o


def test_package_docstring_claims_only_registered_av_methods() -> None:
    """The package docstring lists as implemented only methods that are registered."""
    import lowshot
    from lowshot._registry import METHODS
    from lowshot.methods import av  # noqa: F401  (registers the methods)

    claimed = re.search(r"video classification \(([^;)]*)", lowshot.__doc__.replace("\n", " ")).group(1)
    keys = [n.strip().lower().removesuffix("-gzsl").replace("-", "") for n in claimed.split(",")]
    assert keys and all(k in METHODS for k in keys), (keys, METHODS.names())
