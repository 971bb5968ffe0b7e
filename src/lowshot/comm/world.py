"""An offline world where speaker adaptation is measurable on a CPU in minutes.

Project construction (thesis ch. 7 has no offline analogue; design and measurements in
``shared/reference/communication.md`` §9): procedurally rendered CLEVR-like scenes; a
pixel listener with a perceptual weakness; and a small speaker *language model* (a random
init ``LlamaForCausalLM`` with a word-level tokenizer built here). The speaker reads the
unaltered scenes as attribute words in its prompt (its perception is perfect, as the GT
speaker's), and may say at most ``budget`` words, so that a better policy than "mention
everything" exists: with one word, colour is best for a normal listener and shape for a
colour-blind one. It is first taught (supervised) the whole distribution of a colour-biased
GT speaker (every attribute it may choose first, weighted by how often it does, so that the
non-colour descriptions a better policy needs are within reach on every seed), then adapted
online with the real PPO / NLPO / KTO code through a LoRA adapter per listener.
The same world plays RES (``game="res"``): scenes with several objects, the speaker reads
the target object's and the other objects' attributes, the listener returns a mask, reward
= IoU; any RES listener (pixel or a PaliGemma :class:`~lowshot.comm.mllm.MLLMListener`) plugs in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lowshot._registry import WORLDS
from lowshot.comm.agents import Weakened
from lowshot.comm.attributes import ATTRIBUTE_TYPES, ATTRIBUTES
from lowshot.comm.episodes import ImageItem, REIEpisode, RESEpisode
from lowshot.comm.games import GAMES, evaluate_rei
from lowshot.comm.gt_speaker import GTSpeaker
from lowshot.comm.listeners import PixelListener
from lowshot.comm.perception import make_weakness
from lowshot.comm.policy import ComputeConfig, LoraSpec, SpeakerPolicy
from lowshot.comm.render import SceneObject, render, sample_scene

PROMPT_WORDS = ("target", "other", "and", "say")


@dataclass(frozen=True)
class SpeakerLMConfig:
    """Size of the tiny speaker LM and its supervised warm-up."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    sft_steps: int = 300
    sft_batch_size: int = 32
    sft_lr: float = 3e-3
    teacher_prior: dict[str, float] = field(
        default_factory=lambda: {"color": 0.55, "shape": 0.15, "size": 0.15, "material": 0.15})

    @classmethod
    def tiny(cls) -> SpeakerLMConfig:
        """Default sizes with a 15-step warm-up on batches of 8 (tests, smoke runs)."""
        return cls(sft_steps=15, sft_batch_size=8)


@dataclass(frozen=True)
class WorldConfig:
    """The offline REI world.

    Attributes:
        image_size: square canvas in pixels.
        n_objects: objects per scene.
        train_images / test_images: sizes of the disjoint scene pools.
        test_episodes: fixed held-out episodes (thesis: 300).
        budget: at most this many attribute types per description (the headroom); a
            description is ``<type> <value>`` per type (``"shape cube"``).
        blur_radius: blur of a ``blur`` listener in pixels per 64 px.
        left_bias: listener's probability of "left" on ties.
        train_abstain_on_ties: REI: the pixel listener that gives the training rewards answers
            "I cannot tell." (reward -1) when a description fits both images equally, instead
            of guessing (reward +-1 at random); evaluation listeners always guess. Not the
            thesis' reward (its listeners always guess), so off by default; measured in
            ``docs/benchmarks.md`` (issue 14 item 10).
        speaker: the tiny speaker LM.
        lora: adapter size.
    """

    image_size: int = 64
    n_objects: int = 1
    train_images: int = 400
    test_images: int = 200
    test_episodes: int = 300
    budget: int = 1
    blur_radius: float = 3.0
    left_bias: float = 0.5
    train_abstain_on_ties: bool = False
    speaker: SpeakerLMConfig = field(default_factory=SpeakerLMConfig)
    lora: LoraSpec = field(default_factory=lambda: LoraSpec(r=8, alpha=16.0))

    @classmethod
    def tiny(cls) -> WorldConfig:
        """The smallest useful world (tests, smoke runs): 16 / 8 one-object scenes, 8 held-out
        episodes, a LoRA of rank 4 and a 15-step speaker warm-up."""
        return cls(n_objects=1, train_images=16, test_images=8, test_episodes=8, budget=1,
                   lora=LoraSpec(r=4, alpha=8.0), speaker=SpeakerLMConfig.tiny())


def scene_pool(n: int, rng: np.random.Generator, cfg: WorldConfig, prefix: str) -> list[ImageItem]:
    """``n`` rendered scenes as pool items (images drawn lazily, then cached)."""
    items = []
    for i in range(n):
        s = sample_scene(rng, cfg.n_objects, cfg.image_size, cfg.image_size, f"{prefix}{i}")
        items.append(ImageItem(s.image_id, (lambda s=s: render(s)), None, s))
    return items


def vocabulary() -> list[str]:
    """Prompt words plus every attribute value (the speaker's whole vocabulary)."""
    return list(PROMPT_WORDS) + list(ATTRIBUTE_TYPES) + [v for t in ATTRIBUTE_TYPES for v in ATTRIBUTES[t]]


def _scene_words(objects: Sequence[SceneObject]) -> str:
    return " and ".join(" ".join(o.attributes()[t] for t in ATTRIBUTE_TYPES) for o in objects)


def speaker_prompt(episode: REIEpisode | RESEpisode) -> str:
    """What the text speaker reads: ``<bos> target <attrs> other <attrs> say``.

    REI: the target image's objects vs the other image's; RES: the target object vs the
    other objects of the scene.
    """
    if isinstance(episode, RESEpisode):
        scene = episode.item.scene
        assert scene is not None
        target = [scene.objects[episode.target]]
        other = [o for i, o in enumerate(scene.objects) if i != episode.target]
    else:
        assert episode.target.scene is not None and episode.confounder.scene is not None
        target, other = list(episode.target.scene.objects), list(episode.confounder.scene.objects)
    return f"<bos> target {_scene_words(target)} other {_scene_words(other)} say"


@WORLDS.register("synthetic")
class World:
    """Pools, held-out episodes, listeners and the tiny speaker of one seed.

    Args:
        cfg: the world.
        seed: seeds pools, held-out episodes and the speaker's init.
        game: a registered game (:data:`~lowshot.comm.games.GAMES`): ``rei`` (two images) or
            ``res`` (one scene, segment the target object).
    """

    offline = True  # renders its own scenes and pretrains its own speaker: no data root
    games = ("rei", "res")

    def __init__(self, cfg: WorldConfig, seed: int = 0, game: str = "rei") -> None:
        from lowshot.comm.tiny import tiny_causal_lm, word_tokenizer

        self.cfg = cfg
        self.seed = seed
        self.rules = GAMES.get(game)()
        rng = np.random.default_rng(seed)
        self.train_pool: list[Any] = self.rules.scene_items(scene_pool(cfg.train_images, rng, cfg, "train"))
        self.test_pool: list[Any] = self.rules.scene_items(scene_pool(cfg.test_images, rng, cfg, "test"))
        self.test_episodes = self.sample(self.test_pool, cfg.test_episodes, rng)
        self.tokenizer = word_tokenizer(vocabulary())
        torch.manual_seed(seed)
        s = cfg.speaker
        self.model = tiny_causal_lm(len(self.tokenizer), s.hidden_size, s.num_layers, s.num_heads,
                                    s.intermediate_size, self.tokenizer.pad_token_id,
                                    self.tokenizer.bos_token_id, self.tokenizer.eos_token_id)

    def sample(self, pool: Sequence[Any], n: int, rng: np.random.Generator) -> list[Any]:
        """``n`` episodes of this world's game from ``pool``."""
        return self.rules.sample(pool, n, rng)

    # -------------------------------------------------------------- speaker
    def encode(self, episodes: Sequence[REIEpisode | RESEpisode]) -> dict[str, torch.Tensor]:
        """Left-padded prompt ids of ``episodes``: ``input_ids`` and ``attention_mask`` ``[B, L]``."""
        enc = self.tokenizer([speaker_prompt(e) for e in episodes], return_tensors="pt", padding=True,
                             add_special_tokens=False)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def teacher(self, seed: int = 0) -> GTSpeaker:
        """The colour-biased GT speaker with the word budget."""
        return GTSpeaker(budget=2 * self.cfg.budget, prior=self.cfg.speaker.teacher_prior, seed=seed,
                         name_types=True)

    def pretrain(self) -> list[float]:
        """Supervised warm-up of the speaker LM on the teacher's distribution; returns the losses.

        Every episode is taught along *every* first attribute type the teacher could choose:
        the first word with the teacher's probability of choosing it as target weight, the
        rest of each branch with weight 1. The optimum is still the teacher's distribution
        (colour-biased first word, its value words given each type), but the rarely chosen
        types' value words are learned as well as colour's. Sampling one description per
        episode instead leaves them to chance: after 150-400 steps the value word after
        "shape" was right 25-73 % of the time depending on the seed, so whether a better
        policy than "colour" was reachable by adaptation was decided by the seed.
        """
        import torch.nn.functional as F

        from lowshot.comm.gt_speaker import episode_scenes

        s = self.cfg.speaker
        rng = np.random.default_rng(self.seed + 1000)
        teacher = self.teacher(self.seed)
        opt = torch.optim.Adam(self.model.parameters(), lr=s.sft_lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 - k / max(1, s.sft_steps))
        self.model.train()
        losses = []
        for _ in range(s.sft_steps):
            eps = self.sample(self.train_pool, s.sft_batch_size, rng)
            rows = [(speaker_prompt(e), p, d) for e in eps for p, d in teacher.branches(*episode_scenes(e))]
            texts = [f"{q} {d} <eos>".replace("  ", " ") for q, _, d in rows]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            ids, att = enc["input_ids"], enc["attention_mask"]
            weights = torch.zeros(ids.shape, dtype=torch.float32)
            for i, (q, p, _) in enumerate(rows):
                first = int((att[i] == 0).sum()) + len(q.split())  # first completion token
                weights[i, first:] = att[i, first:].float()
                weights[i, first] = p
            pos = (att.cumsum(-1) - 1).clamp_min(0)
            logits = self.model(input_ids=ids, attention_mask=att, position_ids=pos).logits
            nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), ids[:, 1:], reduction="none")
            w = weights[:, 1:]
            loss = (nll * w).sum() / w.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        self.model.eval()
        return losses

    def policy(self, compute: ComputeConfig | None = None) -> SpeakerPolicy:
        """Wrap the (pretrained) speaker LM for adaptation (LoRA adapters added per listener)."""
        return SpeakerPolicy(self.model, self.tokenizer, self.encode, self.cfg.lora,
                             compute=compute or ComputeConfig())

    # -------------------------------------------------------------- listeners and games
    def truncate(self, messages: Sequence[str]) -> list[str]:
        """The description budget: the listener reads at most ``2 * budget`` words."""
        return [" ".join(m.split()[: self.max_new_tokens]) for m in messages]

    @property
    def max_new_tokens(self) -> int:
        """Words a speaker may say: a type word and a value per attribute of the budget."""
        return 2 * self.cfg.budget

    def listener(self, weakness: str, seed: int = 0, abstain_on_ties: bool = False) -> Weakened:
        """A pixel listener seeing through ``weakness`` (``normal``, ``grayscale``, ``blur``, ...)
        (:class:`~lowshot.comm.listeners.PixelListener` options: ``abstain_on_ties``)."""
        return Weakened(PixelListener(left_bias=self.cfg.left_bias, seed=seed, abstain_on_ties=abstain_on_ties),
                        make_weakness(weakness, self.cfg.blur_radius))

    def game(self, weakness: str, seed: int = 0, listener: Any = None) -> Any:
        """The adaptation :class:`~lowshot.comm.adapt.Game` against a ``weakness`` listener.

        Args:
            weakness: the listener's perceptual weakness.
            seed: seeds the pixel listeners' tie breaks.
            listener: a base listener (e.g. an MLLM) to weaken instead of the pixel listeners;
                used for training and evaluation.
        """
        from lowshot.comm.adapt import Game

        if listener is None:
            train_listener = self.listener(weakness, seed, self.cfg.train_abstain_on_ties)
            eval_listener = self.listener(weakness, seed + 7919)
        else:
            train_listener = eval_listener = Weakened(listener, make_weakness(weakness, self.cfg.blur_radius))
        rules = self.rules

        def sample(n: int, rng: np.random.Generator) -> list[Any]:
            return self.sample(self.train_pool, n, rng)

        def play(eps: Sequence[Any], msgs: Sequence[str]) -> np.ndarray:
            return rules.play(eps, self.truncate(msgs), train_listener)

        def evaluate(describe: Any) -> dict[str, float]:
            if hasattr(eval_listener.listener, "rng"):
                eval_listener.listener.rng = np.random.default_rng(seed + 7919)  # same ties each time
            return rules.evaluate(lambda e: self.truncate(describe(e)), eval_listener, self.test_episodes,
                                  batch_size=100)

        rng_of = getattr(train_listener.listener, "rng", None)

        def get_state() -> Any:
            return rng_of.bit_generator.state if rng_of is not None else None

        def set_state(state: Any) -> None:
            if rng_of is not None and state is not None:
                rng_of.bit_generator.state = state

        return Game(sample, play, evaluate, rules.metric, get_state, set_state)

    def gt_table(self, weaknesses: Sequence[str], ablations: dict[str, tuple[str, ...]],
                 budget: int | None = None) -> dict[str, dict[str, float]]:
        """Success of GT speakers (attribute subsets) per listener on the held-out episodes."""
        out: dict[str, dict[str, float]] = {}
        for name, types in ablations.items():
            sp = GTSpeaker(types=types, budget=budget)
            out[name] = {w: evaluate_rei(sp.describe, self.listener(w, 1), self.test_episodes)["success_rate"]
                         for w in weaknesses}
        return out
