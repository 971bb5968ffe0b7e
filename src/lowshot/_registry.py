"""One registry mechanism for everything that is looked up by name.

Models, methods, benchmarks, encoders, recipes and the comm family's algorithms and
worlds are registered under a
name and retrieved with :meth:`Registry.get`, which fails with a did-you-mean
message. Nothing in lowshot is chosen by substring matching or ``getattr``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from lowshot.errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """A name -> object mapping with decorator registration.

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register("mlp")
        ... class MLP: ...
        >>> MODELS.get("mlp") is MLP
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` (names are unique)."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Look ``name`` up; unknown names raise :class:`ConfigError` with a suggestion."""
        try:
            return self._items[name]
        except KeyError:
            known = sorted(self._items)
            raise ConfigError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, known)} "
                f"(known: {', '.join(known) or 'none'})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


MODELS: Registry = Registry("model")
METHODS: Registry = Registry("method")
BENCHMARKS: Registry = Registry("benchmark")
ENCODERS: Registry = Registry("encoder")
#: recipe name -> callable(config: dict, run_dir: Path | None) -> result dict.
#: A paper YAML names its recipe (``recipe: gzsl``); the recipe validates the rest.
RECIPES: Registry = Registry("recipe")
#: comm: online update rule name -> its class (``lowshot.comm.adapt``: ppo, nlpo, kto).
ALGORITHMS: Registry = Registry("algorithm")
#: comm: world name -> its image pools (``synthetic``: the offline world; released datasets).
WORLDS: Registry = Registry("world")
