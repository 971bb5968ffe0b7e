"""Paper-table definitions: every table parses, its numbers match its settings, bad files are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lowshot.config.paper import load_paper_config, paper_config_names
from lowshot.errors import ConfigError
from lowshot.reports.paper_tables import (
    CellResult,
    Problem,
    RenderedTable,
    format_plan,
    load_table,
    plan_table,
    render_csv,
    render_latex,
    render_markdown,
    select,
    table_ids,
)

MAIN_GZSL_TABLES = ("2.2", "A.1", "3.1", "5.1")


def test_every_table_parses_and_the_main_gzsl_tables_are_shipped() -> None:
    assert set(MAIN_GZSL_TABLES) <= set(table_ids())
    for tid in table_ids():
        spec = load_table(tid)
        assert spec.table == tid and spec.rows
        for row in spec.rows:
            assert set(row.settings) <= set(spec.columns)


@pytest.mark.parametrize("tid", table_ids())
def test_published_numbers_agree_with_each_existing_setting(tid: str) -> None:
    """A table cell and the setting it names carry the same published numbers (x100)."""
    names = set(paper_config_names())
    checked = 0
    for row in load_table(tid).rows:
        for col, setting in row.settings.items():
            if setting not in names:
                continue
            expected = load_paper_config(setting).get("provenance", {}).get("expected", {})
            published = row.published.get(col, {})
            shared = set(expected) & set(published)
            assert shared, f"table {tid} row {row.label}: {setting} and the table share no metric"
            for m in shared:
                assert published[m] == pytest.approx(expected[m], abs=1e-9), (tid, row.label, setting, m)
            checked += 1
    assert checked or tid not in MAIN_GZSL_TABLES  # the GZSL tables name settings that exist today


def test_the_gzsl_tables_have_every_thesis_row() -> None:
    labels = {tid: [r.label for r in load_table(tid).rows] for tid in MAIN_GZSL_TABLES}
    assert labels["2.2"] == ["ALE", "SJE", "DEVISE", "APN", "f-VAEGAN-D2", "CJME", "AVGZSLNet", "AVCA"]
    assert labels["A.1"] == ["ALE", "SJE", "DEVISE", "APN", "CJME", "AVGZSLNet", "AVCA"]
    assert labels["3.1"] == ["Attention Fusion", "Perceiver", "CJME", "AVGZSLNet", "AVCA", "TCaF"]
    assert labels["5.1"] == ["CJME", "AVGZSLNet", "AVCA", "Hyper-multiple", "ClipClap-GZSL (Ours)"]
    t31 = load_table("3.1")
    assert t31.rows[-1].settings == {c: f"tcaf.{c}_cls" for c in ("vggsound", "ucf", "activitynet")}
    assert t31.rows[-1].published["ucf"] == {"S": 67.14, "U": 40.83, "HM": 50.78, "ZSL": 44.64}
    assert load_table("5.1").rows[-1].settings["ucf"] == "clipclap.ucf"  # ClipClap keeps its cell names


GOOD = {"table": "X", "title": "t", "family": "av_gzsl", "columns": ["ucf"], "metrics": ["HM"],
        "rows": [{"label": "A", "settings": {"ucf": "a.ucf_cls"}, "published": {"ucf": {"HM": 1.0}}}]}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(colums=["ucf"]), r"colums: unknown key; did you mean 'columns'"),
        (lambda d: d.pop("metrics"), r"metrics: is missing"),
        (lambda d: d.update(family="gzsl"), r"family: must be one of"),
        (lambda d: d["rows"][0]["settings"].update(ucff="x"), r"rows\[0\] \(A\): column group 'ucff' is not in"),
        (lambda d: d["rows"][0]["published"]["ucf"].update(HM="high"), r"published\.ucf\.HM: must be a number"),
        (lambda d: d["rows"][0]["published"]["ucf"].update(ZSL=1.0), r"published\.ucf\.ZSL: is not in metrics"),
        (lambda d: d["rows"].append(d["rows"][0]), r"rows: label 'A' appears twice"),
    ],
)
def test_a_bad_table_file_is_named_with_its_key(tmp_path: Path, edit, message: str) -> None:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message) as err:
        load_table(str(path))
    assert str(path) in str(err.value)


def test_unknown_table_id_suggests_a_known_one() -> None:
    with pytest.raises(ConfigError, match=r"unknown paper table '3\.2x'.*known: .*3\.1"):
        load_table("3.2x")
    with pytest.raises(ConfigError, match=r"no row 'TCAF'; did you mean 'TCaF'"):
        select(load_table("3.1"), rows=["TCAF"])


def test_plan_lists_every_cell_missing_settings_legacy_switches_and_cost() -> None:
    spec = load_table("3.1")
    cells = plan_table(spec, ["model.legacy_bn_over_padding=true"])
    assert len(cells) == 18
    text = format_plan(spec, cells, (42, 43))
    for row in spec.rows:
        assert f"{row.label}:" in text
        for setting in row.settings.values():
            assert setting in text
    assert "no setting" not in text  # every Table 3.1 cell has its setting (the baselines exist)
    # TCaF UCF: 2 seeds x 2 x 50 epochs x 300 batches x 1.29 s
    assert "tcaf.ucf_cls                       2 run(s), ~21.5 h  † legacy: model.legacy_bn_over_padding" in text
    assert "estimated cost:" in text and "cost model:" in text


def test_renderers_put_published_beside_ours_mark_legacy_rows_and_list_problems() -> None:
    spec = select(load_table("3.1"), rows=["CJME", "TCaF"], columns=["ucf"])
    table = RenderedTable(
        spec, {("TCaF", "ucf"): CellResult({"S": (60.0, 1.0), "U": (40.0, 2.0), "HM": (48.0, 1.5), "ZSL": (44.0, 0.5)}, 3)},
        (Problem("CJME", "ucf", "cjme.ucf_cls", "no setting (not implemented yet)"),),
        {"TCaF": ("tcaf.ucf_cls: model.legacy_bn_over_padding",), "CJME": ()},
    )  # fmt: skip
    md = render_markdown(table)
    assert "| TCaF † | 60.00 ± 1.00 (67.14) | 40.00 ± 2.00 (40.83) | 48.00 ± 1.50 (50.78) | 44.00 ± 0.50 (44.64) |" in md
    assert "| CJME | – (33.89) |" in md
    assert "- CJME / ucf (cjme.ucf_cls): no setting" in md
    assert "† TCaF: published-code behaviour on (tcaf.ucf_cls: model.legacy_bn_over_padding)" in md
    tex = render_latex(table)
    assert r"TCaF $^\dagger$ & 60.00 $\pm$ 1.00 (67.14)" in tex and r"\multicolumn{4}{c}{ucf}" in tex
    rows = render_csv(table).splitlines()
    assert rows[0].startswith("row,legacy,ucf/S/published,ucf/S/mean,ucf/S/std,ucf/S/seeds")
    assert rows[2].startswith("TCaF,tcaf.ucf_cls: model.legacy_bn_over_padding,67.14,60.0,1.0,3,")


def test_a_mistyped_setting_of_an_existing_method_gets_a_suggestion(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["rows"] = [{"label": "TCaF", "settings": {"ucf": "tcaf.ucf_clss"}},
                    {"label": "Future", "settings": {"ucf": "future_method.ucf_cls"}}]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    spec = load_table(str(path))
    text = format_plan(spec, plan_table(spec), (42,))
    assert "tcaf.ucf_clss                      no setting; did you mean 'tcaf.ucf_cls'?" in text
    assert text.count("did you mean") == 1  # a method still to come is not "corrected" to another one
