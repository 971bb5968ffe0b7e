"""AV-Diff GFSL settings: strict validation, §4.4 values, Table C.1 numbers, and the chapter-4 table files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from lowshot.config.paper import load_paper_config, paper_config_names
from lowshot.methods.av.avdiff import AVDiffConfig
from lowshot.recipes.gfsl import parse_gfsl_experiment

NAMES = [n for n in paper_config_names() if n.startswith("avdiff.")]
TABLES = Path(str(resources.files("lowshot") / "reports" / "paper_tables"))


def test_one_cell_per_dataset_and_shot() -> None:
    cells = {f"avdiff.{ds}_{k}shot" for ds in ("vggsound", "ucf", "activitynet") for k in (1, 5, 10, 20)}
    assert cells <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_setting_validates_and_expected_numbers_are_consistent(name: str) -> None:
    exp, model = parse_gfsl_experiment(load_paper_config(name))
    assert exp.recipe == "gfsl" and exp.method == "avdiff" and isinstance(model, AVDiffConfig)
    assert exp.protocol.beta_grid == (0.0, 1.0, 11) and exp.protocol.beta_source == "best_epoch"
    assert not exp.protocol.legacy_beta_zero_search_on_test and not exp.data.legacy_text_order
    e = exp.provenance.expected
    if e:
        assert set(e) == {"B", "N", "HM", "FSL"}
        assert abs(2 * e["B"] * e["N"] / (e["B"] + e["N"]) - e["HM"]) < 0.02, e  # HM of the means


def test_published_values_spot_checks() -> None:
    exp, m = parse_gfsl_experiment(load_paper_config("avdiff.activitynet_1shot"))
    assert (exp.train.batch_size, exp.train.lr, exp.train.lr_scheduler) == (32, 7e-5, True)
    assert (m.depth, m.attention_switch, m.seqlen_mode, m.diffusion_layers) == (5, 3, "fixed", 1)
    assert (m.diffusion_steps, m.generator_hidden, m.diffusion_dropout, m.token_dropout) == (100, 64, 0.4, 0.1)
    exp, m = parse_gfsl_experiment(load_paper_config("avdiff.vggsound_20shot"))
    assert (exp.train.lr, exp.train.lr_scheduler, m.depth, m.attention_switch, m.diffusion_steps) == (6e-5, False, 8, 5, 100)
    exp, m = parse_gfsl_experiment(load_paper_config("avdiff.ucf_20shot"))
    assert (exp.data.shots, m.generator_hidden, m.embedding_dropout, m.diffusion_dropout) == (20, 256, 0.1, 0.1)
    assert (exp.train.epochs, exp.protocol.epochs_fine_tune, exp.train.n_batches) == (30, 20, 300)


@pytest.mark.parametrize("table", ["4.2", "4.3", "4.4", "4.5", "4.6", "C.1"])
def test_table_files_agree_with_the_settings(table: str) -> None:
    spec = yaml.safe_load((TABLES / f"{table}.yaml").read_text(encoding="utf-8"))
    assert spec["table"] == table and spec["family"] == "av_gfsl"
    names = set(paper_config_names())
    for row in spec["rows"]:
        assert set(row["settings"]) == set(spec["columns"]) == set(row["published"])
        for col, setting in row["settings"].items():
            assert set(row["published"][col]) == set(spec["metrics"])
            if setting in names:
                expected = load_paper_config(setting)["provenance"]["expected"]
                assert {m: expected[m] for m in spec["metrics"]} == row["published"][col], (table, setting)
