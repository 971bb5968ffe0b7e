"""Synthetic video-adverb data written in the released layout (for tests and the demo).

Writes, below ``root``::

    splits/s3d/seen_compositions/<DATASET>/{train,test,antonyms}.csv
    splits/s3d/unseen_compositions/<DATASET>/{train,test,unlabelled,antonyms}.csv   (optional)
    features/<DATASET>/s3d/ht1m_init/stack_size=16_freq=1/rgb/{train,test}.pth
    features/s3d/s3d_dict.npy, features/s3d/s3d_howto100m.pth   (random S3D text module)

Everything is deterministic from ``seed``. The data has learnable structure that is not
saturated: each action has a prototype feature vector, each antonym pair a direction
(+w for one adverb, -w for the other) whose effect is modulated per action (so the
composition matters), only some time steps show the annotated action (the others show a
distractor action, so the action-query attention matters), and Gaussian noise blurs
everything. Label frequencies are Zipf-like with composition affinities, so the Priors
baseline is informative too. Duplicate annotations, train/test clip overlap, integer
clip ids and variable lengths (zero padding) can be switched on to exercise the readers.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lowshot.data.adverbs.features import FEATURE_SUBDIR, write_released_features
from lowshot.data.adverbs.text import S3D_TEXT_KEYS, words
from lowshot.utils.io import atomic_path, atomic_write_json

ANTONYM_PAIRS = (
    ("quickly", "slowly"), ("completely", "partially"), ("gently", "firmly"),
    ("upwards", "downwards"), ("forwards", "backwards"), ("carefully", "carelessly"),
    ("loudly", "quietly"), ("neatly", "messily"), ("properly", "improperly"),
    ("instantly", "gradually"), ("evenly", "unevenly"), ("continuously", "periodically"),
    ("horizontally", "vertically"), ("outdoor", "indoor"), ("out", "in"), ("off", "on"),
    ("finely", "coarsely"),
)  # fmt: skip
ACTIONS = (
    "cut", "stir", "pour", "mix", "spread", "fold", "push", "pull", "climb", "dance", "throw",
    "run", "jump", "swim", "walk", "ride", "lift", "drop", "open", "close", "wash", "dry",
    "paint", "draw", "write", "sing", "play", "kick", "roll", "spin", "shake", "press",
    "grind", "slice", "chop", "peel", "bake", "fry", "boil", "knead",
)  # fmt: skip
SEEN_HEADER = (
    "clip_id,youtube_id,start_time,end_time,action,adverb,sentence,clustered_action,"
    "clustered_adverb,rgb_frames,action_adv,adverb_label,action_label,action_adv_label"
).split(",")


@dataclass(frozen=True)
class SynthSpec:
    """Size and difficulty of a synthetic dataset.

    Attributes:
        dataset: folder name (one of the ReGaDa names, so the standard loaders find it).
        n_adverb_pairs: antonym pairs (adverbs = 2 x this).
        n_actions: number of actions.
        n_clips: number of distinct clips (rows = clips + duplicate annotations).
        test_fraction: fraction of clips whose rows go to test.
        video_dim / joint_dim: feature sizes (1024 / 512 in the release).
        t_min / t_max: clip length range in steps (equal = fixed length).
        signal: strength of the adverb effect relative to unit noise.
        relevant_fraction: fraction of steps that show the annotated action.
        duplicate_fraction: fraction of clips with a second annotation (another adverb).
        overlap_fraction: fraction of duplicated clips whose second row is in the other split.
        int_ids: integer clip ids (as HowTo100M) instead of strings.
        unseen: also write an unseen-composition split.
        text_word_dim / text_hidden: size of the random S3D text module.
        seed: RNG seed.
    """

    dataset: str = "VATEX_Adverbs"
    n_adverb_pairs: int = 4
    n_actions: int = 12
    n_clips: int = 600
    test_fraction: float = 0.25
    video_dim: int = 64
    joint_dim: int = 32
    t_min: int = 4
    t_max: int = 8
    signal: float = 0.35
    relevant_fraction: float = 0.6
    duplicate_fraction: float = 0.05
    overlap_fraction: float = 0.5
    int_ids: bool = False
    unseen: bool = True
    text_word_dim: int = 32
    text_hidden: int = 64
    seed: int = 0


def _vocab(spec: SynthSpec) -> tuple[list[str], list[str], dict[str, str]]:
    if spec.n_adverb_pairs > len(ANTONYM_PAIRS):
        raise ValueError(f"at most {len(ANTONYM_PAIRS)} antonym pairs")
    pairs = ANTONYM_PAIRS[: spec.n_adverb_pairs]
    adverbs = [w for p in pairs for w in p]
    antonyms = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    actions = [ACTIONS[i] if i < len(ACTIONS) else f"action{i}" for i in range(spec.n_actions)]
    return adverbs, actions, antonyms


def _label_distribution(rng: np.random.Generator, n_adv: int, n_act: int) -> np.ndarray:
    """``[n_adv, n_act]`` composition probabilities: Zipf marginals times random affinities."""
    p_adv = 1.0 / np.arange(1, n_adv + 1) ** 0.8
    p_adv = p_adv[rng.permutation(n_adv)]
    p_act = 1.0 / np.arange(1, n_act + 1) ** 0.6
    affinity = rng.gamma(0.7, 1.0, size=(n_adv, n_act))
    p = p_adv[:, None] * p_act[None, :] * affinity
    return p / p.sum()


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _csv_row(cid: Any, adv: str, act: str, t_len: int, adv_lab: int, act_lab: int) -> list[Any]:
    return [
        cid, f"yt{cid}", 0.0, float(t_len), act, adv, f"someone {act}s {adv}", act, adv,
        t_len * 25, f"[('{act}', '{adv}')]", adv_lab, act_lab, adv_lab * 1000 + act_lab,
    ]  # fmt: skip


def _text_state(spec: SynthSpec, n_words: int) -> dict[str, torch.Tensor]:
    """Random S3D text-module tensors (:data:`S3D_TEXT_KEYS`) over ``n_words`` + padding."""
    gen = torch.Generator().manual_seed(spec.seed + 1)
    shapes = (
        (n_words + 1, spec.text_word_dim),
        (spec.text_hidden, spec.text_word_dim),
        (spec.text_hidden,),
        (spec.joint_dim, spec.text_hidden),
        (spec.joint_dim,),
    )
    return {
        k: torch.randn(shape, generator=gen) / max(1, shape[-1]) ** 0.5
        for k, shape in zip(S3D_TEXT_KEYS, shapes)
    }


def _s3d_text(state: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """The S3D text module's forward (``lowshot.extract.text.S3DTextModule``) on raw tensors:
    ``[N, 16]`` tokens -> ``[N, joint_dim]``. Kept here so the data layer needs no encoder."""
    x = torch.relu(
        F.linear(
            F.embedding(tokens, state["word_embd.weight"]), state["fc1.weight"], state["fc1.bias"]
        )
    )
    return F.linear(x.max(dim=1).values, state["fc2.weight"], state["fc2.bias"])


def generate(root: str | Path, spec: SynthSpec | None = None) -> dict[str, Any]:
    """Write a synthetic dataset below ``root`` in the released layout.

    Returns:
        A manifest (also written to ``root/synth_manifest.json``): spec, paths, row counts.
    """
    spec = spec or SynthSpec()
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    adverbs, actions, antonyms = _vocab(spec)
    n_adv, n_act = len(adverbs), len(actions)

    # --- text side: random S3D text module over the vocabulary words -------------------
    vocab_words = sorted({w for t in adverbs + actions for w in words(t)} | {"someone"})
    text = _text_state(spec, len(vocab_words))
    tok = {w: i + 1 for i, w in enumerate(vocab_words)}

    def phrase(adv: str, act: str) -> torch.Tensor:
        ids = [tok[w] for w in words(f"{adv} {act}")][:16]
        t = torch.zeros(1, 16, dtype=torch.int64)
        t[0, : len(ids)] = torch.tensor(ids)
        return _s3d_text(text, t)[0]

    # --- video side --------------------------------------------------------------------
    d = spec.video_dim
    proto = rng.standard_normal((n_act, d)) * 1.0
    pair_dirs = rng.standard_normal((spec.n_adverb_pairs, d))
    adv_dir = np.stack([pair_dirs[i // 2] * (1 if i % 2 == 0 else -1) for i in range(n_adv)])
    act_mod = np.where(rng.random((n_act, d)) < 0.3, -1.0, 1.0) * rng.uniform(0.5, 1.5, (n_act, d))
    probs = _label_distribution(rng, n_adv, n_act)
    joint_of = {
        (a, v): phrase(adverbs[a], actions[v]).numpy() for a in range(n_adv) for v in range(n_act)
    }
    joint_scale = 1.0 / max(1e-6, float(np.mean([np.linalg.norm(x) for x in joint_of.values()])))

    flat = rng.choice(n_adv * n_act, size=spec.n_clips, p=probs.ravel())
    labels = [[(int(f // n_act), int(f % n_act))] for f in flat]
    for c in np.flatnonzero(rng.random(spec.n_clips) < spec.duplicate_fraction):
        a, v = labels[c][0]
        # a second adverb from another antonym pair (a clip is never "quickly and slowly")
        others = [x for x in range(n_adv) if x not in (a, adverbs.index(antonyms[adverbs[a]]))]
        labels[c].append((int(rng.choice(others)), v))

    video: dict[Any, np.ndarray] = {}
    joint: dict[Any, np.ndarray] = {}
    ids: list[Any] = []
    lengths: list[int] = []
    for c, labs in enumerate(labels):
        cid: Any = c + 10 if spec.int_ids else f"synth{c:05d}_000000_000010"
        t_len = int(rng.integers(spec.t_min, spec.t_max + 1))
        v = labs[0][1]
        relevant = rng.random(t_len) < spec.relevant_fraction
        relevant[rng.integers(t_len)] = True
        distract = rng.choice([x for x in range(n_act) if x != v] or [v])
        effect = sum(adv_dir[a] * act_mod[v] for a, _ in labs) * spec.signal
        x = rng.standard_normal((t_len, d))
        x[relevant] += proto[v] + effect
        x[~relevant] += proto[distract]
        j = rng.standard_normal((t_len, spec.joint_dim)) * 1.5
        j[relevant] += sum(joint_of[(a, v)] for a, _ in labs) * joint_scale
        video[cid], joint[cid] = x.astype(np.float32), (j / spec.joint_dim**0.5).astype(np.float32)
        ids.append(cid)
        lengths.append(t_len)

    # --- seen split: clips -> train/test; some duplicated clips straddle both ------------
    is_test = rng.random(spec.n_clips) < spec.test_fraction
    adv_lab = {a: i for i, a in enumerate(rng.permutation(adverbs).tolist())}  # deliberately
    act_lab = {a: i for i, a in enumerate(rng.permutation(actions).tolist())}  # not vocab order
    train_rows, test_rows = [], []
    train_clips, test_clips = set(), set()
    for c, labs in enumerate(labels):
        for k, (a, v) in enumerate(labs):
            in_test = bool(is_test[c])
            if k > 0 and rng.random() < spec.overlap_fraction:
                in_test = not in_test
            row = _csv_row(
                ids[c], adverbs[a], actions[v], lengths[c], adv_lab[adverbs[a]], act_lab[actions[v]]
            )
            (test_rows if in_test else train_rows).append(row)
            (test_clips if in_test else train_clips).add(c)
    # every adverb must occur in test, or its AP is undefined: move one row per missing adverb
    for a in adverbs:
        if not any(r[8] == a for r in test_rows):
            i = next(i for i, r in enumerate(train_rows) if r[8] == a)
            test_rows.append(train_rows.pop(i))
            test_clips.add(ids.index(test_rows[-1][0]))

    seen_dir = root / "splits" / "s3d" / "seen_compositions" / spec.dataset
    _write_csv(seen_dir / "train.csv", SEEN_HEADER, train_rows)
    _write_csv(seen_dir / "test.csv", SEEN_HEADER, test_rows)
    _write_csv(
        seen_dir / "antonyms.csv", ["adverb", "antonym"], [[a, antonyms[a]] for a in adverbs]
    )

    feat_dir = root / "features" / spec.dataset / FEATURE_SUBDIR
    for part, clips in (("train", train_clips), ("test", test_clips)):
        keep = sorted(clips)
        write_released_features(
            feat_dir / f"{part}.pth",
            {ids[c]: video[ids[c]] for c in keep},
            {ids[c]: joint[ids[c]] for c in keep},
        )

    # --- unseen split: compositions in two halves (antonym compositions together) -------
    manifest: dict[str, Any] = {
        "spec": asdict(spec),
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
    }
    if spec.unseen:
        half = {}
        for p in range(spec.n_adverb_pairs):
            for v in range(n_act):
                side = int((p + v) % 2) if rng.random() < 0.8 else int(rng.integers(2))
                half[(2 * p, v)] = half[(2 * p + 1, v)] = side
        rows = {"train": [], "test": [], "unlabelled": []}
        for c, labs in enumerate(labels):
            a, v = labs[0]
            row = _csv_row(ids[c], adverbs[a], actions[v], lengths[c], 0, 0)
            if half[(a, v)] == 0:
                rows["train"].append(row)
            else:
                rows["test" if rng.random() < 0.5 else "unlabelled"].append(row)
        unseen_dir = root / "splits" / "s3d" / "unseen_compositions" / spec.dataset
        for part, r in rows.items():
            _write_csv(unseen_dir / f"{part}.csv", SEEN_HEADER, r)
        _write_csv(
            unseen_dir / "antonyms.csv", ["adverb", "antonym"], [[a, antonyms[a]] for a in adverbs]
        )
        manifest["unseen_rows"] = {k: len(v) for k, v in rows.items()}

    s3d_dir = root / "features" / "s3d"
    s3d_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(s3d_dir / "s3d_dict.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.array(vocab_words))
    with atomic_path(s3d_dir / "s3d_howto100m.pth") as tmp:
        torch.save({f"text_module.{k}": v for k, v in text.items()}, tmp)
    atomic_write_json(root / "synth_manifest.json", manifest)
    return manifest
