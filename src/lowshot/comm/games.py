"""REI and RES episodes, rewards and held-out evaluation (thesis §7.3, §7.4.1).

REI: two images from a pool (different classes when the pool has labels); one is the
target. The speaker sees them in one order with the target side known; the listener sees
them in an independently shuffled order, so "the left one" is no trivial solution.
Reward +1/-1 from the keyword parser (ambiguous = -1).

RES: one image and a target object; the speaker sees a red circle as big as the target box,
the listener does not. Reward = IoU of the listener's mask with the ground-truth mask,
binarised at 0.5 where an algorithm needs a binary signal (KTO).

Both games are registered in :data:`GAMES` (``rei``, ``res``): a config's ``game`` names one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lowshot._registry import Registry
from lowshot.comm.agents import REIListener, RESListener
from lowshot.comm.attributes import has_color_word
from lowshot.comm.episodes import ImageItem, REIEpisode, RESEpisode, RESItem
from lowshot.comm.parsing import rei_reward
from lowshot.comm.render import object_mask
from lowshot.errors import DataError

#: game name -> its :class:`GameRules` subclass (``rei``, ``res``).
GAMES: Registry = Registry("game")


def sample_rei_episodes(pool: Sequence[ImageItem], n: int, rng: np.random.Generator,
                        require_different_labels: bool = True) -> list[REIEpisode]:
    """``n`` episodes; images of one episode are distinct (and of different classes if labelled)."""
    if len(pool) < 2:
        raise DataError("an REI pool needs at least two images")
    labelled = require_different_labels and all(it.label is not None for it in pool)
    if labelled and len({it.label for it in pool}) < 2:
        raise DataError("an REI pool with labels needs at least two classes")
    out = []
    while len(out) < n:
        i, j = rng.choice(len(pool), size=2, replace=False)
        t, c = pool[int(i)], pool[int(j)]
        if labelled and t.label == c.label:
            continue
        if t.scene is not None and c.scene is not None and t.scene.objects == c.scene.objects:
            continue
        out.append(REIEpisode(t, c, int(rng.integers(2)), int(rng.integers(2))))
    return out


def sample_res_episodes(pool: Sequence[RESItem], n: int, rng: np.random.Generator) -> list[RESEpisode]:
    """``n`` episodes: a random item and a random object of it."""
    items = [it for it in pool if it.boxes]
    if not items:
        raise DataError("an RES pool needs items with at least one object")
    out = []
    for _ in range(n):
        it = items[int(rng.integers(len(items)))]
        out.append(RESEpisode(it, int(rng.integers(len(it.boxes)))))
    return out


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two ``[H, W]`` bool masks (0 when both are empty)."""
    inter = np.logical_and(pred, gt).sum()
    union = np.logical_or(pred, gt).sum()
    return float(inter / union) if union else 0.0


def binarise_iou(iou: float | np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """KTO's desirable label for RES: IoU >= threshold."""
    return np.asarray(iou) >= threshold


def play_rei(episodes: Sequence[REIEpisode], messages: Sequence[str], listener: REIListener
             ) -> tuple[np.ndarray, list[str]]:
    """Rewards ``[B]`` (+-1) and the listener's raw answers."""
    answers = listener.answer([e.listener_images for e in episodes], messages)
    rewards = np.array([rei_reward(a, e.listener_target_side) for a, e in zip(answers, episodes)])
    return rewards, answers


def play_res(episodes: Sequence[RESEpisode], messages: Sequence[str], listener: RESListener) -> np.ndarray:
    """IoU rewards ``[B]`` in [0, 1]."""
    masks = listener.segment([e.listener_image for e in episodes], messages)
    return np.array([mask_iou(m, e.gt_mask) for m, e in zip(masks, episodes)])


def message_stats(messages: Sequence[str]) -> dict[str, float]:
    """Colour-word rate, mean length in words and non-empty rate of descriptions."""
    n = max(1, len(messages))
    return {
        "color_word_rate": sum(has_color_word(m) for m in messages) / n,
        "mean_length": sum(len(m.split()) for m in messages) / n,
        "nonempty_rate": sum(bool(m.strip()) for m in messages) / n,
    }


def evaluate_rei(describe: Callable[[Sequence[REIEpisode]], list[str]], listener: REIListener,
                 episodes: Sequence[REIEpisode], batch_size: int = 64) -> dict[str, float]:
    """Success rate (fraction of +1) and message statistics on fixed held-out episodes."""
    msgs: list[str] = []
    rewards: list[np.ndarray] = []
    for s in range(0, len(episodes), batch_size):
        chunk = episodes[s:s + batch_size]
        m = describe(chunk)
        r, _ = play_rei(chunk, m, listener)
        msgs += m
        rewards.append(r)
    r = np.concatenate(rewards) if rewards else np.zeros(0)
    return {"success_rate": float((r > 0).mean()) if r.size else 0.0, **message_stats(msgs)}


def evaluate_res(describe: Callable[[Sequence[RESEpisode]], list[str]], listener: RESListener,
                 episodes: Sequence[RESEpisode], batch_size: int = 64) -> dict[str, float]:
    """mIoU (mean per-episode IoU), success@0.5 and message statistics."""
    msgs: list[str] = []
    ious: list[np.ndarray] = []
    for s in range(0, len(episodes), batch_size):
        chunk = episodes[s:s + batch_size]
        m = describe(chunk)
        ious.append(play_res(chunk, m, listener))
        msgs += m
    iou = np.concatenate(ious) if ious else np.zeros(0)
    return {"miou": float(iou.mean()) if iou.size else 0.0,
            "success_rate": float(binarise_iou(iou).mean()) if iou.size else 0.0,
            **message_stats(msgs)}


def res_items(pool: Sequence[ImageItem]) -> list[RESItem]:
    """RES view of rendered scene items: every object is referable (box + rendered mask)."""
    out = []
    for it in pool:
        assert it.scene is not None
        out.append(RESItem(it.key, it.load, tuple(o.box for o in it.scene.objects),
                           (lambda k, s=it.scene: object_mask(s, k)), scene=it.scene))
    return out


class GameRules:
    """A registered game: how its episodes are drawn, played and evaluated.

    Attributes:
        name: the registered name (a config's ``game``).
        metric: the held-out metric adaptation is judged by.
        segments: the listener answers with a mask (needs a mask decoder for an MLLM).
    """

    name = ""
    metric = "success_rate"
    segments = False

    def scene_items(self, pool: Sequence[ImageItem]) -> list[Any]:
        """This game's view of a pool of rendered scene items."""
        return list(pool)

    def sample(self, pool: Sequence[Any], n: int, rng: np.random.Generator) -> list[Any]:
        """``n`` episodes drawn from ``pool``."""
        raise NotImplementedError

    def play(self, episodes: Sequence[Any], messages: Sequence[str], listener: Any) -> np.ndarray:
        """Rewards ``[B]`` of ``messages`` to ``listener``."""
        raise NotImplementedError

    def evaluate(self, describe: Callable[[Sequence[Any]], list[str]], listener: Any,
                 episodes: Sequence[Any], batch_size: int = 64) -> dict[str, float]:
        """Metrics of ``describe`` on fixed held-out ``episodes``."""
        raise NotImplementedError


@GAMES.register("rei")
class REI(GameRules):
    """Reference expression identification: two images, +-1 reward (:func:`play_rei`)."""

    name = "rei"

    def sample(self, pool: Sequence[Any], n: int, rng: np.random.Generator) -> list[Any]:
        """``n`` episodes (:func:`sample_rei_episodes`)."""
        return sample_rei_episodes(pool, n, rng)

    def play(self, episodes: Sequence[Any], messages: Sequence[str], listener: Any) -> np.ndarray:
        """+-1 rewards ``[B]`` (:func:`play_rei`)."""
        return play_rei(episodes, messages, listener)[0]

    def evaluate(self, describe: Callable[[Sequence[Any]], list[str]], listener: Any,
                 episodes: Sequence[Any], batch_size: int = 64) -> dict[str, float]:
        """Success rate and message statistics (:func:`evaluate_rei`)."""
        return evaluate_rei(describe, listener, episodes, batch_size)


@GAMES.register("res")
class RES(GameRules):
    """Referring expression segmentation: one scene, IoU reward (:func:`play_res`)."""

    name = "res"
    metric = "miou"
    segments = True

    def scene_items(self, pool: Sequence[ImageItem]) -> list[Any]:
        """Every object of every scene is referable (:func:`res_items`)."""
        return res_items(pool)

    def sample(self, pool: Sequence[Any], n: int, rng: np.random.Generator) -> list[Any]:
        """``n`` episodes (:func:`sample_res_episodes`)."""
        return sample_res_episodes(pool, n, rng)

    def play(self, episodes: Sequence[Any], messages: Sequence[str], listener: Any) -> np.ndarray:
        """IoU rewards ``[B]`` (:func:`play_res`)."""
        return play_res(episodes, messages, listener)

    def evaluate(self, describe: Callable[[Sequence[Any]], list[str]], listener: Any,
                 episodes: Sequence[Any], batch_size: int = 64) -> dict[str, float]:
        """mIoU, success@0.5 and message statistics (:func:`evaluate_res`)."""
        return evaluate_res(describe, listener, episodes, batch_size)
