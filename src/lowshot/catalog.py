"""Where registered things live: importing a module fills the registries.

``load_all()`` imports everything (for ``lowshot list``); ``load_recipe(name)`` imports just
the module of one recipe, so a run never depends on unrelated optional parts. A part whose
optional extra is not installed (e.g. ``lowshot[comm]`` needs transformers) stays
unregistered instead of breaking ``lowshot list``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from lowshot._registry import RECIPES, did_you_mean
from lowshot.errors import ConfigError

#: recipe name -> module that registers it
RECIPE_MODULES = {
    "gzsl": "lowshot.recipes.gzsl",
    "gfsl": "lowshot.recipes.gfsl",
    "adverbs": "lowshot.recipes.adverbs",
    "comm": "lowshot.recipes.comm",
}
#: modules that register components other than recipes (``lowshot list encoders``)
COMPONENT_MODULES = ("lowshot.extract.av",)
_OPTIONAL = {"transformers", "peft", "PIL", "matplotlib", "tensorboard"}


def load_recipe(name: str) -> Callable:
    """The recipe callable registered under ``name`` (imports its module first)."""
    if name not in RECIPE_MODULES:
        raise ConfigError(f"unknown recipe '{name}'{did_you_mean(name, list(RECIPE_MODULES))}")
    importlib.import_module(RECIPE_MODULES[name])
    return RECIPES.get(name)


def load_all() -> list[str]:
    """Import every registering module; returns the recipes skipped for a missing extra."""
    skipped = []
    for name, module in [*RECIPE_MODULES.items(), *((m, m) for m in COMPONENT_MODULES)]:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] not in _OPTIONAL:
                raise
            skipped.append(f"{name} (needs {err.name})")
    return skipped
