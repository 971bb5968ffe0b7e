"""The one result schema: written atomically, read back validated, legacy switches recorded."""

import json

import pytest

from lowshot.utils.results import (
    RunNotReadable,
    legacy_options,
    make_result,
    parse_result,
    read_result,
)


@pytest.fixture
def run(gzsl_result_dir):
    return gzsl_result_dir


def test_result_round_trips_and_records_legacy_switches(run):
    result = read_result(run)
    assert result == make_result(**{**_kwargs(result)})
    assert result.legacy == ("model.legacy_train_extra_pass",)
    assert result.metrics["HM"].per_seed == {"1": 50.4, "2": 51.4}
    assert json.loads((run / "result.json").read_text())["metrics"]["HM"] == {
        "mean": 50.9, "std": 0.5, "per_seed": {"1": 50.4, "2": 51.4}}


def _kwargs(result):
    return {"setting": result.setting, "family": result.family, "method": result.method,
            "per_seed": {int(s): v for s, v in result.per_seed.items()}, "unit": result.unit,
            "selection": result.selection, "config": {"model": {"legacy_train_extra_pass": True}},
            "provenance": result.provenance, "metric_order": list(result.metrics)}


def test_legacy_options_finds_switches_values_and_published_selection():
    config = {"data": {"legacy_text_order": True, "trust_pickle": True},
              "model": {"legacy_bn_passes": False, "input_norm": "legacy_tcaf"},
              "protocol": {"stage2_scheduler": "legacy_val_on_train", "selection": "best_per_metric"}}
    assert legacy_options(config) == ("data.legacy_text_order", "model.input_norm=legacy_tcaf",
                                      "protocol.stage2_scheduler=legacy_val_on_train",
                                      "protocol.selection=best_per_metric")


def test_fraction_results_scale_to_x100_and_unknown_keys_are_named(tmp_path):
    res = make_result(setting="a", family="adverbs", method="m", per_seed={0: {"acc_a": 0.5}, 1: {"acc_a": 0.7}},
                      unit="fraction", selection="last", config={}, provenance={})
    assert res.x100("acc_a") == pytest.approx((60.0, 10.0))
    data = res.to_dict() | {"sumary": {}}
    with pytest.raises(RunNotReadable, match=r"r\.json: key 'sumary' is not part of the result schema"):
        parse_result(data, tmp_path / "r.json")
