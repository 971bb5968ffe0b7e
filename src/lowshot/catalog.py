"""Import every module that registers models, methods, benchmarks, encoders or recipes.

A part whose optional extra is not installed (e.g. ``lowshot[comm]`` needs transformers)
stays unregistered instead of breaking ``lowshot list``.
"""

from __future__ import annotations

import importlib

_MODULES = (
    "lowshot.recipes.gzsl",
    "lowshot.recipes.adverbs",
    "lowshot.comm.recipe",
)
_OPTIONAL = {"transformers", "peft", "PIL", "matplotlib", "tensorboard"}

for _name in _MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in _OPTIONAL:
            raise
