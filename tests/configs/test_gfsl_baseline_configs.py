"""GFSL baseline settings of Tables 4.2 / C.1: one cell per dataset and shot, strict validation,
consistent published numbers, and the chapter-4 table files name exactly these settings."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from lowshot._registry import METHODS
from lowshot.config.paper import load_paper_config, paper_config_names
from lowshot.recipes.gfsl import parse_gfsl_experiment

BASELINES = ("protogan", "sldg", "tsl", "hip", "mbt", "zorro", "avca", "tcaf", "perceiver", "attention_fusion")
#: GZSL baselines implemented on another branch: their GFSL settings resolve once they are registered
ELSEWHERE = ("perceiver", "attention_fusion")
CELLS = [f"{m}.{ds}_{k}shot" for m in BASELINES for ds in ("vggsound", "ucf", "activitynet") for k in (1, 5, 10, 20)]
#: cells whose printed HM differs from HM(B, N) by more than rounding (thesis Table C.1 as printed)
PRINTED_HM_OFF = {"hip.vggsound_5shot"}
TABLES = Path(str(resources.files("lowshot") / "reports" / "paper_tables"))


def test_one_cell_per_method_dataset_and_shot() -> None:
    assert set(CELLS) <= set(paper_config_names())


@pytest.mark.parametrize("name", CELLS)
def test_cell_validates_with_consistent_numbers(name: str) -> None:
    method = name.split(".")[0]
    raw = load_paper_config(name)
    assert raw["recipe"] == "gfsl" and raw["method"] == method
    e = raw["provenance"]["expected"]
    assert set(e) == {"B", "N", "HM", "FSL"} and raw["provenance"]["table"] == "C.1"
    hm = 2 * e["B"] * e["N"] / (e["B"] + e["N"])  # HM of the means
    if name in PRINTED_HM_OFF:  # the thesis prints another HM; the note says so
        assert f"HM {e['HM']} is not HM(B, N) = {hm:.2f}" in raw["provenance"]["notes"]
    else:
        assert abs(hm - e["HM"]) < 0.02, e
    assert "no upstream parity reference" in raw["provenance"]["notes"]
    if method in ELSEWHERE and method not in METHODS:
        pytest.skip(f"{method} is not registered in this branch")
    exp, model = parse_gfsl_experiment(raw)
    assert exp.data.shots == int(name.split("_")[-1].removesuffix("shot"))
    assert exp.protocol.beta_grid == (0.0, 1.0, 11) and exp.protocol.beta_source == "best_epoch"
    if method == "avca":
        assert model.gfsl_classifier


@pytest.mark.parametrize("table", ["4.2", "C.1"])
def test_table_rows_name_the_baseline_settings(table: str) -> None:
    spec = yaml.safe_load((TABLES / f"{table}.yaml").read_text(encoding="utf-8"))
    named = {s for row in spec["rows"] for s in row["settings"].values()}
    shown = {c for c in CELLS if c.split(".")[1] in spec["columns"]}
    assert shown <= named
