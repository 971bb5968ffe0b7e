"""Paper settings: one YAML per published table cell, addressed as ``<family>.<setting>``.

The YAMLs live in the package (``lowshot/configs/<family>/<setting>.yaml``) so that
``lowshot reproduce clipclap.ucf`` works from any install. Each holds the recipe name, the
non-default values of the setting and its provenance (paper, table, expected numbers).

A setting may start from a shared file: ``base: _base`` names a YAML beside it (files whose
name starts with ``_`` are bases, not settings). The setting's mappings are merged into the
base's key by key, any other value (scalar, list) replaces the base's; a base may itself
have a base. ``provenance.expected`` is the one mapping replaced whole: expected numbers
belong to one table cell, so an ablation setting built on a cell never inherits the cell's
numbers for metrics its table does not print. So the values a method's cells share are written once, and each cell holds its
delta, its provenance and its expected numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lowshot._registry import did_you_mean
from lowshot.config.overrides import apply_overrides
from lowshot.config.schema import load_yaml
from lowshot.errors import ConfigError

#: top-level key naming the YAML (beside the file, without ``.yaml``) a setting starts from
BASE_KEY = "base"


@dataclass(frozen=True)
class Provenance:
    """Where a setting comes from and which numbers it should give (x100 where metrics)."""

    paper: str = ""
    table: str = ""
    expected: dict[str, float] = field(default_factory=dict)
    notes: str = ""


def _config_root() -> Path:
    return Path(str(resources.files("lowshot") / "configs"))


def paper_config_names() -> list[str]:
    """All settings, e.g. ``['avca.ucf_cls', 'clipclap.ucf', ...]`` (files starting with _ are skipped)."""
    root = _config_root()
    return sorted(
        f"{p.parent.name}.{p.stem}" for p in root.glob("*/*.yaml") if not p.stem.startswith("_")
    )


def paper_config_path(name: str) -> Path:
    """``clipclap.ucf`` -> path of its YAML; a path to an existing file is returned as is."""
    as_path = Path(name)
    if as_path.suffix in {".yaml", ".yml"}:
        if not as_path.exists():
            raise ConfigError(f"config file not found: {as_path}")
        return as_path
    family, _, setting = name.partition(".")
    path = _config_root() / family / f"{setting}.yaml"
    if not setting or not path.exists():
        names = paper_config_names()
        raise ConfigError(f"unknown paper setting '{name}'{did_you_mean(name, names)}")
    return path


def merge_into(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """A new mapping: ``base`` with ``delta`` merged in (mappings key by key, other values replaced)."""
    out = dict(base)
    for key, value in delta.items():
        old = out.get(key)
        out[key] = merge_into(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def resolve_yaml(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML file with its ``base:`` chain merged in (the key itself removed).

    Raises:
        ConfigError: ``base`` is not a name, names no file beside ``path``, or loops.
    """
    data = load_yaml(path)
    if BASE_KEY not in data:
        return data
    base = data.pop(BASE_KEY)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: '{BASE_KEY}' must name a YAML file beside it (e.g. _base), got {base!r}")
    base_path = path.parent / (base if base.endswith((".yaml", ".yml")) else f"{base}.yaml")
    chain = (*_chain, path.resolve())
    if not base_path.is_file():
        raise ConfigError(f"{path}: {BASE_KEY} '{base}' not found (no file {base_path})")
    if base_path.resolve() in chain:
        raise ConfigError(f"{path}: {BASE_KEY} '{base}' loops back to a file of its own chain")
    merged = merge_into(resolve_yaml(base_path, chain), data)
    prov = data.get("provenance")
    if isinstance(prov, dict) and "expected" in prov:  # never merged with the base cell's numbers
        merged["provenance"]["expected"] = prov["expected"]
    return merged


def load_paper_config(name: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw mapping of a setting (base chain merged, ``key=value`` overrides applied; validated
    by its recipe)."""
    path = paper_config_path(name)
    data = resolve_yaml(path)
    if "recipe" not in data:
        raise ConfigError(f"{path}: missing top-level key 'recipe'")
    data.setdefault("name", name if not name.endswith((".yaml", ".yml")) else path.stem)
    return apply_overrides(data, overrides)
