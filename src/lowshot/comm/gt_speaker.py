"""Ground-truth CLEVR speaker (thesis §7.4.2) and its attribute ablations (Fig. 7.3 / F.1).

The description mentions every attribute value that appears at least once in the target
scene but in no object of the confounder scene. Ablations drop attribute types
(``types=("shape", "size", "material")`` is "without colour"). Extensions used by the
offline world (off by default, so the default is the published GT speaker): a word
``budget`` and a stochastic ``prior`` over types that prefers some attributes (the
colour-biased teacher the tiny speaker is first taught from).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lowshot.comm.attributes import ATTRIBUTE_TYPES
from lowshot.comm.episodes import REIEpisode, RESEpisode
from lowshot.comm.render import Scene
from lowshot.errors import ConfigError


def distinguishing_values(target: Scene, confounder: Scene,
                          types: Sequence[str] = ATTRIBUTE_TYPES) -> dict[str, list[str]]:
    """Type -> values present in ``target`` and absent from every object of ``confounder``."""
    out: dict[str, list[str]] = {}
    for t in types:
        vals = sorted(target.values(t) - confounder.values(t))
        if vals:
            out[t] = vals
    return out


class GTSpeaker:
    """Speaker with perfect perception that reads the scene annotations.

    Args:
        types: attribute types it may mention (ablations drop some).
        budget: at most this many words (None = all distinguishing values).
        prior: optional type -> weight; with a budget, types are drawn without replacement
            proportionally to these weights (among distinguishing types) instead of in
            ``types`` order.
        seed: seed of the draws.
        name_types: put the type word before each type's values (``"shape cube"``), the
            grammar of the offline world's speaker (off for the published GT speaker).
    """

    def __init__(self, types: Sequence[str] = ATTRIBUTE_TYPES, budget: int | None = None,
                 prior: Mapping[str, float] | None = None, seed: int = 0,
                 name_types: bool = False) -> None:
        unknown = set(types) - set(ATTRIBUTE_TYPES)
        if unknown:
            raise ConfigError(f"unknown attribute types {sorted(unknown)} (known: {ATTRIBUTE_TYPES})")
        self.types = tuple(types)
        self.budget = budget
        self.prior = dict(prior) if prior else None
        self.rng = np.random.default_rng(seed)
        self.name_types = name_types

    def _order(self, available: list[str]) -> list[str]:
        if self.prior is None or len(available) <= 1:
            return available
        w = np.array([max(self.prior.get(t, 0.0), 1e-9) for t in available], dtype=float)
        idx = self.rng.choice(len(available), size=len(available), replace=False, p=w / w.sum())
        return [available[i] for i in idx]

    def _words(self, vals: dict[str, list[str]], order: Sequence[str]) -> str:
        words = [w for t in order for w in ([t] if self.name_types else []) + vals[t]]
        return " ".join(words if self.budget is None else words[: self.budget])

    def describe_scenes(self, target: Scene, confounder: Scene) -> str:
        """Description of ``target`` against ``confounder`` (space-separated values)."""
        vals = distinguishing_values(target, confounder, self.types)
        return self._words(vals, self._order(list(vals)))

    def branches(self, target: Scene, confounder: Scene) -> list[tuple[float, str]]:
        """Every way a description can start: ``(P(first type), description)`` per first type.

        The rest of each description is drawn as :meth:`describe_scenes` draws it. Without a
        prior, or with at most one distinguishing type, there is one branch of probability 1.
        """
        vals = distinguishing_values(target, confounder, self.types)
        avail = list(vals)
        if self.prior is None or len(avail) <= 1:
            return [(1.0, self._words(vals, avail))]
        w = np.array([max(self.prior.get(t, 0.0), 1e-9) for t in avail], dtype=float)
        return [(float(p), self._words(vals, [t] + self._order([a for a in avail if a != t])))
                for p, t in zip(w / w.sum(), avail)]

    def describe(self, episodes: Sequence[REIEpisode]) -> list[str]:
        """REI: per episode, the target scene's values that the confounder does not show
        (:meth:`describe_scenes`)."""
        return [self.describe_scenes(*episode_scenes(e)) for e in episodes]

    def describe_object(self, episodes: Sequence[RESEpisode]) -> list[str]:
        """RES: the target object's values that no other object of the scene shares."""
        return [self.describe_scenes(*episode_scenes(e)) for e in episodes]


def episode_scenes(episode: REIEpisode | RESEpisode) -> tuple[Scene, Scene]:
    """``(target, confounder)`` scenes of an episode; for RES the target object against the
    scene's other objects."""
    if isinstance(episode, RESEpisode):
        scene = episode.item.scene
        if scene is None:
            raise ConfigError("the GT speaker needs scene annotations")
        return (Scene((scene.objects[episode.target],)),
                Scene(tuple(o for i, o in enumerate(scene.objects) if i != episode.target)))
    if episode.target.scene is None or episode.confounder.scene is None:
        raise ConfigError("the GT speaker needs scene annotations (CLEVR or rendered scenes)")
    return episode.target.scene, episode.confounder.scene


#: ablations of Fig. 7.3 / F.1: name -> attribute types mentioned
ABLATIONS: dict[str, tuple[str, ...]] = {
    "all": ATTRIBUTE_TYPES,
    **{f"no_{t}": tuple(x for x in ATTRIBUTE_TYPES if x != t) for t in ATTRIBUTE_TYPES},
    **{f"only_{t}": (t,) for t in ATTRIBUTE_TYPES},
}
