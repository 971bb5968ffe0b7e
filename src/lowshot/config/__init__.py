"""Configs are data, dataclasses are the schema.

* :func:`from_dict` builds a (frozen) dataclass from a mapping, strictly: unknown keys are
  errors with a did-you-mean, types are checked.
* :func:`apply_overrides` applies ``a.b=value`` strings to a mapping.
* :mod:`lowshot.config.paper` finds the YAML of a paper setting (``clipclap.ucf``).
"""

from lowshot.config.overrides import apply_overrides, parse_override
from lowshot.config.schema import from_dict, load_yaml, save_yaml, to_dict

__all__ = ["from_dict", "to_dict", "load_yaml", "save_yaml", "apply_overrides", "parse_override"]
