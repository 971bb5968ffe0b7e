"""Result tables and figures."""

import json

import pytest

from lowshot.reports.tables import load_rows, to_csv, to_latex, to_markdown
from lowshot.utils.results import legacy_options, make_result, read_result, write_result

MEANS = dict(zip(("S", "U", "HM", "ZSL"), (70.0, 40.0, 50.9, 45.0)))
EXPECTED = {"S": 77.14, "U": 43.91, "HM": 55.97, "ZSL": 46.96}


@pytest.fixture
def run(tmp_path):
    result = make_result(
        setting="clipclap.ucf", family="av_gzsl", method="clipclap",
        per_seed={1: {k: m - 0.5 for k, m in MEANS.items()}, 2: {k: m + 0.5 for k, m in MEANS.items()}},
        unit="x100", selection="validation HM", config={"model": {"legacy_train_extra_pass": True}},
        provenance={"paper": "Kurzendörfer et al.", "table": "5.1", "expected": EXPECTED}, metric_order=MEANS,
    )  # fmt: skip
    write_result(tmp_path, result)
    return tmp_path


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


def test_tables_show_mean_std_and_published_row(run):
    rows = load_rows([run])
    md = to_markdown(rows)
    assert "| clipclap.ucf (2 seeds) | 70.00 ± 0.50 | 40.00 ± 0.50 | 50.90 ± 0.50 | 45.00 ± 0.50 |" in md
    assert "published (Kurzendörfer et al., Table 5.1) | 77.14 |" in md
    assert to_csv(rows).splitlines()[1].startswith("clipclap.ucf (2 seeds),70.0,0.5,40.0")
    assert r"70.00 $\pm$ 0.50" in to_latex(rows)
    assert len(load_rows([run], with_reference=False)) == 1


def test_learning_curve_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from lowshot.reports.figures import plot_learning_curves

    history = [{"stage": 1, "epoch": e, "loss": 3 - e, "val_S": 10 * e, "val_U": 5 * e, "val_HM": 6 * e} for e in range(3)]
    history += [{"stage": 2, "epoch": e, "loss": 3 - e} for e in range(3)]
    out = plot_learning_curves(history, tmp_path / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
