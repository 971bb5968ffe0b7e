"""The AVCA/TCaF ablation settings (thesis Tables 2.3-2.6, A.3, A.4, 3.2-3.4, B.1-B.3) and
their table files: every setting builds its method, carries the numbers its table prints,
and a few run end to end on synthetic data."""

from __future__ import annotations

import dataclasses
import functools
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from av_tiny import make_benchmark, tiny_spec

import lowshot.methods.av.avca  # noqa: F401  (registers avca)
import lowshot.methods.av.tcaf  # noqa: F401  (registers tcaf)
from lowshot._registry import METHODS
from lowshot.config.paper import load_paper_config, paper_config_names
from lowshot.recipes.gzsl import parse_experiment, run_gzsl

pytestmark = pytest.mark.usefixtures("one_thread")

ABLATION_TABLES = {
    "avca": ("2.3", "2.4", "2.5", "2.6", "A.3", "A.4"),
    "tcaf": ("3.2", "3.3", "3.4", "B.1", "B.2", "B.3"),
}
TABLE_DIR = Path(str(resources.files("lowshot") / "reports" / "paper_tables"))
DATASETS = ["vggsound", "ucf", "activitynet"]
#: the dataset cell each family's ablations start from
CELL_FEATURES = {"avca": "main", "tcaf": "cls"}
TINY = {
    "avca": dict(dim=24, encoder_hidden=32, decoder_hidden=32, dim_out=8, dim_head=8, mlp_dim=16),
    "tcaf": dict(
        dim=24, encoder_hidden=32, decoder_hidden=32, dim_out=8, pos_dim=8, dim_head=8, mlp_dim=16
    ),
}


#: provenance of every AVCA / TCaF setting, read once
PROVENANCE = {
    n: load_paper_config(n)["provenance"]
    for n in paper_config_names()
    if n.split(".")[0] in ABLATION_TABLES
}
SETTINGS = [n for n, p in PROVENANCE.items() if p["table"] in ABLATION_TABLES[n.split(".")[0]]]
TABLES = {t: yaml.safe_load((TABLE_DIR / f"{t}.yaml").read_text(encoding="utf-8"))
          for ts in ABLATION_TABLES.values() for t in ts}  # fmt: skip


def test_every_ablation_row_has_its_three_settings() -> None:
    """19 TCaF and 14 AVCA ablation rows, each on the three datasets."""
    assert len(SETTINGS) == 3 * (14 + 19)


@functools.cache
def _bench(temporal: bool):
    return make_benchmark(seed=0, temporal=temporal)


@pytest.mark.parametrize("name", SETTINGS)
def test_ablation_setting_builds_its_method_and_changes_its_cell(name: str) -> None:
    family, setting = name.split(".")
    dataset = setting.split("_")[0]
    cell = f"{family}.{dataset}_{CELL_FEATURES[family]}"
    assert setting.startswith(f"{dataset}_{CELL_FEATURES[family]}_")
    exp, model = parse_experiment(load_paper_config(name))
    cell_exp, cell_model = parse_experiment(load_paper_config(cell))
    assert load_paper_config(cell)["data"] == load_paper_config(name)["data"]
    assert model != cell_model  # the row is an ablation of its cell
    assert exp.provenance.paper == cell_exp.provenance.paper
    assert {"HM", "ZSL"} <= set(exp.provenance.expected) <= {"S", "U", "HM", "ZSL"}
    assert exp.provenance.expected != cell_exp.provenance.expected
    assert f"as {cell} " in exp.provenance.notes
    tiny = dataclasses.replace(model, **TINY[family])
    temporal = family == "tcaf"
    method = METHODS.get(family)(tiny, tiny_spec(temporal=temporal))
    bench = _bench(temporal)
    fs = bench.splits["stage_1_train"]
    idx = np.arange(0, len(fs), 10)[:16]
    torch.manual_seed(0)
    batch = method.collate(fs, idx, fs.labels[idx], True, np.random.default_rng(0))
    out = method.training_loss(batch, torch.as_tensor(bench.class_embeddings))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])


@pytest.mark.parametrize("table_id", sorted(TABLES))
def test_table_file_agrees_with_its_settings(table_id: str) -> None:
    """The published numbers of a table file are the ``provenance.expected`` of the settings
    its rows name (the numbers x100 as printed); a row naming no existing setting says why."""
    table = TABLES[table_id]
    known = set(PROVENANCE)
    family = next(f for f, ts in ABLATION_TABLES.items() if table_id in ts)
    assert table["table"] == table_id and table["family"] == "av_gzsl"
    assert table["columns"] == DATASETS
    assert table["rows"] and len({r["label"] for r in table["rows"]}) == len(table["rows"])
    for row in table["rows"]:
        assert list(row["settings"]) == DATASETS and list(row["published"]) == DATASETS
        for col in DATASETS:
            name, published = row["settings"][col], row["published"][col]
            assert list(published) == table["metrics"], (row["label"], col)
            assert name.split(".")[1].startswith(f"{col}_"), name
            if name not in known:
                assert row.get("note"), f"{table_id} '{row['label']}': {name} does not exist"
                continue
            expected = PROVENANCE[name]["expected"]
            for metric, value in published.items():
                assert expected[metric] == value, (table_id, row["label"], col, metric)
            if {"S", "U"} <= set(expected):  # the printed HM is the harmonic mean of S and U
                s, u = expected["S"], expected["U"]
                # (the thesis rounds; Table 3.3 A_x UCF prints HM 23.62 for 23.59)
                assert math.isclose(2 * s * u / (s + u), expected["HM"], abs_tol=0.05), name
    for name in SETTINGS:  # every ablation setting of this table is one of its rows
        if PROVENANCE[name]["table"] == table_id:
            assert any(name in r["settings"].values() for r in table["rows"]), name
    assert family in {n.split(".")[0] for r in table["rows"] for n in r["settings"].values()}


TINY_RUN = [
    "train.epochs=1",
    "train.n_batches=2",
    "train.batch_size=32",
    "train.progress=false",
    "data.synthetic_size=0.03",
    "model.encoder_hidden=32",
    "model.decoder_hidden=32",
]


@pytest.mark.parametrize(
    ("setting", "extra"),
    [
        ("avca.ucf_main_xatt_lc", ["data.synthetic=main_averaged"]),  # new switch (Table A.3)
        ("avca.ucf_main_no_xatt", ["data.synthetic=main_averaged"]),  # averaged distances
        ("tcaf.ucf_cls_att_avca", ["data.synthetic=cls_temporal"]),  # new switch (Table B.3)
    ],
)
def test_ablation_setting_runs_on_synthetic_data(setting: str, extra: list[str], tmp_path) -> None:
    result = run_gzsl(load_paper_config(setting, TINY_RUN + extra), tmp_path / "run")
    for key in ("S", "U", "HM", "ZSL"):
        value = result.metrics[key].mean
        assert math.isfinite(value) and 0.0 <= value <= 100.0
    assert result.expected == PROVENANCE[setting]["expected"]
