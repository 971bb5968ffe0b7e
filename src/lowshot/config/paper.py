"""Paper settings: one YAML per published table cell, addressed as ``<family>.<setting>``.

The YAMLs live in the package (``lowshot/configs/<family>/<setting>.yaml``) so that
``lowshot reproduce clipclap.ucf`` works from any install. Each holds the recipe name, the
non-default values of the setting and its provenance (paper, table, expected numbers).
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


def load_paper_config(name: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw mapping of a setting with ``key=value`` overrides applied (validated by its recipe)."""
    path = paper_config_path(name)
    data = load_yaml(path)
    if "recipe" not in data:
        raise ConfigError(f"{path}: missing top-level key 'recipe'")
    data.setdefault("name", name if not name.endswith((".yaml", ".yml")) else path.stem)
    return apply_overrides(data, overrides)
