"""Strict conversion between mappings (YAML) and dataclass schemas."""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from lowshot._registry import did_you_mean
from lowshot.errors import ConfigError
from lowshot.utils.io import atomic_write_text, to_dict, yaml_text

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check/convert ``value`` against the annotation ``tp``; ``where`` names the key."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{where}: {value!r} is not one of {list(allowed)}"
                f"{did_you_mean(str(value), [str(a) for a in allowed])}"
            )
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: null is not allowed (expected {_type_name(tp)})")
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not match {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where=where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            items = [_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    return value


def check_range(
    name: str, value: float, low: float | None = None, high: float | None = None, *, open_low: bool = False,
    open_high: bool = False,
) -> None:
    """Raise ValueError unless ``value`` is a finite number in the interval (NaN always fails).

    Meant for ``__post_init__`` of config dataclasses: :func:`from_dict` turns the ValueError into
    a :class:`ConfigError` prefixed with the section, so ``train.lr=.nan`` fails when the config
    loads, not in the middle of training.
    """
    lo = "" if low is None else f"{'>' if open_low else '>='} {low}"
    hi = "" if high is None else f"{'<' if open_high else '<='} {high}"
    ok = math.isfinite(value)
    ok = ok and (low is None or (value > low if open_low else value >= low))
    ok = ok and (high is None or (value < high if open_high else value <= high))
    if not ok:
        rule = " and ".join(r for r in (lo, hi) if r) or "finite"
        raise ValueError(f"{name} must be {rule}, got {value!r}")


def from_dict(schema: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build ``schema`` from ``data``; unknown keys and wrong types raise ConfigError.

    Args:
        schema: a dataclass type.
        data: mapping of field name -> value (nested mappings for nested dataclasses).
        where: dotted location used in error messages (e.g. ``"clipclap.ucf.model"``).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    hints = get_type_hints(schema)
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"unknown key '{key}' in {where}{did_you_mean(str(key), list(fields))} "
                f"(known keys: {', '.join(fields)})"
            )
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    try:
        return schema(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where}: {err}") from err


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def save_yaml(data: Any, path: str | Path) -> None:
    """Write ``data`` (dataclass or mapping) as YAML atomically."""
    atomic_write_text(Path(path), yaml_text(data))


__all__ = ["check_range", "from_dict", "to_dict", "load_yaml", "save_yaml"]
