"""The result schema every recipe writes (``<run>/result.json``) and every reader reads.

One schema for the three families (audio-visual GZSL/GFSL, video adverbs, comm)::

    {
      "schema": 1,
      "setting": "tcaf.ucf_cls",          # the config's name
      "family": "av_gzsl",                # av_gzsl | av_gfsl | adverbs | comm
      "method": "tcaf",
      "seeds": [42, 43],
      "unit": "x100",                     # x100 (GZSL/GFSL numbers) | fraction (0-1: adverbs, comm)
      "per_seed": {"42": {"S": .., "U": .., "HM": .., "ZSL": ..}, "43": {...}},
      "metrics": {"HM": {"mean": .., "std": .., "per_seed": {"42": .., "43": ..}}, ...},
      "selection": "validation HM (two-stage)",   # the rule that picked the reported numbers
      "legacy": ["model.legacy_bn_over_padding"], # published-code switches that are on
      "expected": {"HM": 50.78},          # provenance.expected (x100)
      "provenance": {"paper": .., "table": .., "expected": {..}, "notes": ..},
      "extra": {...}                      # family-specific (class counts, data report, curves)
    }

``std`` is the population standard deviation over seeds (numpy ``ddof=0``,
:func:`~lowshot.utils.seed.seed_mean_std`). :func:`write_result` writes atomically;
:func:`read_result` validates and names the file and key of anything wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lowshot.errors import LowshotError
from lowshot.utils.io import atomic_write_json, read_json
from lowshot.utils.seed import seed_mean_std

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"
FAMILIES = ("av_gzsl", "av_gfsl", "adverbs", "comm")
UNITS = ("x100", "fraction")
#: leaf config keys whose value (not a ``legacy_`` prefix) selects published behaviour
LEGACY_VALUES: dict[str, tuple[str, ...]] = {"selection": ("best_per_metric",), "beta_source": ("last_epoch",)}


class RunNotReadable(LowshotError):
    """A run directory is missing, unfinished, or its ``result.json`` does not follow the schema."""


@dataclass(frozen=True)
class MetricSummary:
    """One metric over seeds: mean, population std and the value of each seed (``str(seed)`` keys)."""

    mean: float
    std: float
    per_seed: dict[str, float]


@dataclass(frozen=True)
class RunResult:
    """The result of one run (one setting over its seeds); see the module docstring."""

    setting: str
    family: str
    method: str
    seeds: tuple[int, ...]
    unit: str
    per_seed: dict[str, dict[str, float]]
    metrics: dict[str, MetricSummary]
    selection: str
    legacy: tuple[str, ...] = ()
    expected: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    def means(self) -> dict[str, float]:
        """Metric -> mean over seeds."""
        return {k: m.mean for k, m in self.metrics.items()}

    def x100(self, name: str) -> tuple[float, float]:
        """(mean, std) of ``name`` on the x100 scale of published numbers."""
        scale = 100.0 if self.unit == "fraction" else 1.0
        m = self.metrics[name]
        return m.mean * scale, m.std * scale

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``result.json``."""
        return asdict(self)


def legacy_options(config: Mapping[str, Any], prefix: str = "") -> tuple[str, ...]:
    """Dotted keys of ``config`` that turn on published (legacy) behaviour.

    A key counts when its name starts with ``legacy_`` and its value is true, when its string
    value starts with ``legacy`` (``protocol.stage2_scheduler: legacy_val_on_train``,
    ``model.input_norm: legacy_tcaf``), or when it is a :data:`LEGACY_VALUES` entry
    (``protocol.selection: best_per_metric``, ``protocol.beta_source: last_epoch``).
    """
    out: list[str] = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(legacy_options(value, f"{dotted}."))
        elif (str(key).startswith("legacy_") and value is True) or (
            isinstance(value, str) and (value.startswith("legacy") or value in LEGACY_VALUES.get(str(key), ()))
        ):
            out.append(dotted if value is True else f"{dotted}={value}")
    return tuple(out)


def make_result(
    *,
    setting: str,
    family: str,
    method: str,
    per_seed: Mapping[int, Mapping[str, float]],
    unit: str,
    selection: str,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    metric_order: Iterable[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RunResult:
    """Aggregate per-seed metrics into a :class:`RunResult`.

    Args:
        setting / family / method: what ran.
        per_seed: seed -> {metric: value} (values in ``unit``).
        unit: ``x100`` or ``fraction``.
        selection: the rule that picked the reported numbers.
        config: the resolved config (its legacy switches are recorded).
        provenance: ``{paper, table, expected, notes}`` of the setting.
        metric_order: metric names in report order (default: sorted).
        extra: family-specific block.
    """
    seeds = tuple(int(s) for s in per_seed)
    rows = [dict(per_seed[s]) for s in per_seed]
    stats = seed_mean_std(rows, metric_order)
    metrics = {
        name: MetricSummary(st["mean"], st["std"], {str(s): float(per_seed[s][name]) for s in per_seed
                                                   if name in per_seed[s]})
        for name, st in stats.items()
    }
    prov = dict(provenance)
    return RunResult(
        setting=setting, family=family, method=method, seeds=seeds, unit=unit,
        per_seed={str(s): {k: float(v) for k, v in per_seed[s].items()} for s in per_seed},
        metrics=metrics, selection=selection, legacy=legacy_options(config),
        expected={k: float(v) for k, v in dict(prov.get("expected") or {}).items()},
        provenance=prov, extra=dict(extra or {}),
    )  # fmt: skip


def write_result(run_dir: Path, result: RunResult) -> Path:
    """Write ``result`` to ``<run_dir>/result.json`` atomically; returns the path."""
    path = Path(run_dir) / RESULT_FILE
    atomic_write_json(path, result.to_dict())
    return path


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _need(ok: bool, path: Path, key: str, what: str) -> None:
    if not ok:
        raise RunNotReadable(f"{path}: key '{key}' {what}")


def parse_result(data: Any, path: Path) -> RunResult:
    """Validate the JSON form of a result (read from ``path``, named in errors) into a :class:`RunResult`.

    Raises:
        RunNotReadable: a missing key, a wrong type, an unknown family or unit (names the key).
    """
    _need(isinstance(data, dict), path, "(top level)", "must be a mapping")
    required = ("setting", "family", "method", "seeds", "unit", "per_seed", "metrics", "selection")
    for key in required:
        _need(key in data, path, key, f"is missing (not a lowshot result of schema {SCHEMA_VERSION}; "
              "results of older lowshot versions are rerun, not read)")
    unknown = set(data) - {f for f in RunResult.__dataclass_fields__}
    _need(not unknown, path, sorted(unknown)[0] if unknown else "", "is not part of the result schema")
    _need(data.get("schema", SCHEMA_VERSION) == SCHEMA_VERSION, path, "schema", f"must be {SCHEMA_VERSION}")
    _need(data["family"] in FAMILIES, path, "family", f"must be one of {list(FAMILIES)}, got {data['family']!r}")
    _need(data["unit"] in UNITS, path, "unit", f"must be one of {list(UNITS)}, got {data['unit']!r}")
    for key in ("setting", "method", "selection"):
        _need(isinstance(data[key], str), path, key, "must be a string")
    _need(isinstance(data["seeds"], list) and all(isinstance(s, int) for s in data["seeds"]), path, "seeds",
          "must be a list of integers")
    _need(isinstance(data["per_seed"], dict), path, "per_seed", "must be a mapping seed -> metrics")
    for seed, row in data["per_seed"].items():
        _need(isinstance(row, dict) and all(_number(v) for v in row.values()), path, f"per_seed.{seed}",
              "must map metric names to numbers")
    _need(isinstance(data["metrics"], dict), path, "metrics", "must be a mapping name -> {mean, std, per_seed}")
    metrics = {}
    for name, m in data["metrics"].items():
        where = f"metrics.{name}"
        _need(isinstance(m, dict) and set(m) == {"mean", "std", "per_seed"}, path, where,
              "must hold exactly mean, std and per_seed")
        _need(_number(m["mean"]) and _number(m["std"]), path, where, "must have a numeric mean and std")
        _need(isinstance(m["per_seed"], dict) and all(_number(v) for v in m["per_seed"].values()), path,
              f"{where}.per_seed", "must map seeds to numbers")
        metrics[name] = MetricSummary(float(m["mean"]), float(m["std"]), dict(m["per_seed"]))
    for key in ("expected", "provenance", "extra"):
        _need(isinstance(data.get(key, {}), dict), path, key, "must be a mapping")
    _need(isinstance(data.get("legacy", []), list), path, "legacy", "must be a list of config keys")
    return RunResult(
        setting=data["setting"], family=data["family"], method=data["method"], seeds=tuple(data["seeds"]),
        unit=data["unit"], per_seed=data["per_seed"], metrics=metrics, selection=data["selection"],
        legacy=tuple(data.get("legacy", [])), expected=dict(data.get("expected", {})),
        provenance=dict(data.get("provenance", {})), extra=dict(data.get("extra", {})),
    )  # fmt: skip


def read_result(run_dir: Path) -> RunResult:
    """The validated result of a finished run directory.

    Raises:
        RunNotReadable: ``run_dir`` is missing or a file, holds no ``result.json`` (unfinished),
            or the result does not follow the schema (names the key).
        CorruptFileError: ``result.json`` is not valid JSON.
    """
    run = Path(run_dir)
    path = run / RESULT_FILE
    if not run.exists():
        raise RunNotReadable(f"run dir {run} does not exist")
    if not run.is_dir():
        raise RunNotReadable(f"{run} is a file, not a run dir (pass the folder that holds {RESULT_FILE})")
    if not path.is_file():
        why = ("the run has not finished (killed or still running); rerun its command to resume it"
               if (run / "config.yaml").exists() else "this is not a lowshot run dir")
        raise RunNotReadable(f"{run} has no {RESULT_FILE}: {why}")
    return parse_result(read_json(path), path)


def has_result(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run's ``result.json``."""
    return (Path(run_dir) / RESULT_FILE).is_file()


__all__ = [
    "FAMILIES", "RESULT_FILE", "MetricSummary", "RunNotReadable", "RunResult", "has_result", "legacy_options",
    "make_result", "parse_result", "read_result", "write_result",
]
