"""Paper settings start from a shared base file (``base:``): resolution, errors, and that the
shipped cells hold deltas only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lowshot.config.paper import (
    BASE_KEY,
    _config_root,
    load_paper_config,
    merge_into,
    paper_config_names,
    resolve_yaml,
)
from lowshot.errors import ConfigError


def _write(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_base_chain_merges_mappings_and_replaces_other_values(tmp_path: Path) -> None:
    _write(tmp_path, "_base", {"recipe": "gzsl", "train": {"lr": 1.0, "seeds": [1, 2]}, "data": {"text": ["a"]}})
    _write(tmp_path, "_ds", {BASE_KEY: "_base", "data": {"dataset": "UCF"}, "train": {"epochs": 3}})
    cell = _write(tmp_path, "cell", {BASE_KEY: "_ds", "train": {"seeds": [7]}, "model": {"depth": 2}})
    assert resolve_yaml(cell) == {
        "recipe": "gzsl",
        "train": {"lr": 1.0, "seeds": [7], "epochs": 3},  # lists are replaced, not appended
        "data": {"text": ["a"], "dataset": "UCF"},
        "model": {"depth": 2},
    }
    assert load_paper_config(str(cell), ["train.lr=0.5"])["train"]["lr"] == 0.5
    assert BASE_KEY not in load_paper_config(str(cell))


def test_expected_numbers_are_replaced_whole_not_merged(tmp_path: Path) -> None:
    """An ablation row built on a cell prints fewer metrics: it must not inherit the cell's."""
    cell = {"recipe": "gzsl", "provenance": {"paper": "p", "table": "2.2", "expected": {"S": 1.0, "HM": 2.0}}}
    _write(tmp_path, "cell", cell)
    row = _write(tmp_path, "row", {BASE_KEY: "cell", "provenance": {"table": "2.4", "expected": {"HM": 3.0}}})
    assert resolve_yaml(row)["provenance"] == {"paper": "p", "table": "2.4", "expected": {"HM": 3.0}}


def test_merge_leaves_its_inputs_alone() -> None:
    base, delta = {"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}
    assert merge_into(base, delta) == {"a": {"b": 3, "c": 2}}
    assert base == {"a": {"b": 1, "c": 2}} and delta == {"a": {"b": 3}}


@pytest.mark.parametrize(
    "files, message",
    [
        ({"cell": {BASE_KEY: "_missing", "recipe": "gzsl"}}, r"cell.yaml: base '_missing' not found"),
        ({"cell": {BASE_KEY: ["_base"], "recipe": "gzsl"}}, r"cell.yaml: 'base' must name a YAML file"),
        ({"cell": {BASE_KEY: "", "recipe": "gzsl"}}, r"cell.yaml: 'base' must name a YAML file"),
        ({"cell": {BASE_KEY: "_a"}, "_a": {BASE_KEY: "_b"}, "_b": {BASE_KEY: "_a"}}, r"_b.yaml: base '_a' loops"),
        ({"cell": {BASE_KEY: "cell"}}, r"cell.yaml: base 'cell' loops"),
    ],
)
def test_bad_base_is_a_config_error_naming_the_file(tmp_path: Path, files: dict, message: str) -> None:
    for name, data in files.items():
        _write(tmp_path, name, data)
    with pytest.raises(ConfigError, match=message):
        load_paper_config(str(tmp_path / "cell.yaml"))


def _restated(delta: dict, base: dict, where: str = "") -> list[str]:
    """Keys of ``delta`` that repeat the value ``base`` already gives."""
    out = []
    for key, value in delta.items():
        replaced_whole = f"{where}{key}" == "provenance.expected"
        if key in base and isinstance(value, dict) and isinstance(base[key], dict) and not replaced_whole:
            out += _restated(value, base[key], f"{where}{key}.")
        elif key in base and base[key] == value:
            out.append(f"{where}{key}")
    return out


SHIPPED = sorted(_config_root().glob("*/*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_files_hold_deltas_only(path: Path) -> None:
    """A file with a base states only what differs from it (shared values live once)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if BASE_KEY not in raw:
        return
    base = resolve_yaml(path.parent / f"{raw[BASE_KEY]}.yaml")
    assert _restated({k: v for k, v in raw.items() if k != BASE_KEY}, base) == []


def test_every_shipped_base_is_used() -> None:
    bases = {p for p in SHIPPED if p.stem.startswith("_")}
    used = set()
    for path in SHIPPED:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if BASE_KEY in raw:
            used.add(path.parent / f"{raw[BASE_KEY]}.yaml")
    # a setting may also start from a table cell (an ablation row: base ucf_main, say)
    assert bases == {p for p in used if p.stem.startswith("_")}
    assert all(p in SHIPPED for p in used)
    assert not any(n.split(".")[1].startswith("_") for n in paper_config_names())


@pytest.mark.parametrize("family", ["avca", "clipclap", "tcaf"])
def test_every_cell_of_a_family_starts_from_its_base(family: str) -> None:
    """The ~25 shared lines of a method are written once: each cell resolves through _base."""
    for name in (n for n in paper_config_names() if n.startswith(f"{family}.")):
        chain, path = [], _config_root() / family / f"{name.split('.')[1]}.yaml"
        while BASE_KEY in (raw := yaml.safe_load(path.read_text(encoding="utf-8"))):
            path = path.parent / f"{raw[BASE_KEY]}.yaml"
            chain.append(path.stem)
        # GFSL cells of a GZSL method (recipe gfsl) start from the method's _gfsl base
        assert chain and chain[-1] == ("_gfsl" if load_paper_config(name)["recipe"] == "gfsl" else "_base"), name
        assert set(load_paper_config(name)["provenance"]) >= {"paper", "table", "expected", "notes"}
