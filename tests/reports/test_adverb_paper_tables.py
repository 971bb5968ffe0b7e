"""The adverb paper-table files: format, every row's settings exist, published == provenance.expected."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from lowshot.config.paper import load_paper_config, paper_config_names

ADVERB_TABLES = ("6.2", "6.3", "6.4", "6.5", "6.6", "E.2", "E.3", "E.4", "E.5")
DATASETS = {"howto100m", "air", "activitynet", "msrvtt", "vatex"}


def _table(tid: str) -> dict:
    path = Path(str(resources.files("lowshot") / "reports" / "paper_tables" / f"{tid}.yaml"))
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("tid", ADVERB_TABLES)
def test_table_published_numbers_agree_with_settings(tid: str) -> None:
    t = _table(tid)
    assert t["table"] == tid and t["family"] == "adverbs"
    assert set(t["columns"]) <= DATASETS and t["metrics"]
    names = set(paper_config_names())
    for row in t["rows"]:
        assert row["note"], row["label"]  # the selection rule of the row
        assert set(row["settings"]) == set(row["published"]) == set(t["columns"]), row["label"]
        for col, setting in row["settings"].items():
            assert setting in names, (tid, row["label"], setting)
            expected = load_paper_config(setting)["provenance"]["expected"]
            published = row["published"][col]
            assert set(published) == set(t["metrics"]), (tid, row["label"], col)
            got = {m: expected.get(m) for m in t["metrics"]}
            assert got == published, (tid, row["label"], col, setting)


def test_table_6_2_lists_every_baseline_on_every_dataset() -> None:
    t = _table("6.2")
    assert t["columns"] == ["howto100m", "air", "activitynet", "msrvtt", "vatex"]
    assert [r["label"] for r in t["rows"]] == [
        "Priors", "S3D pre-tr.", "TIRG", "Act. M.", "AC_CLS †", "AC_REG †", "REGADA",
    ]  # fmt: skip
    for row in t["rows"][2:]:  # trained: the row says how its numbers were selected
        assert "test-selected" in row["note"] and "validation" in row["note"]
