"""Synthetic audio-visual GZSL benchmarks in the released layouts.

One seeded generator feeds two entry points:

* :func:`make_synthetic_benchmark` builds the :class:`GZSLBenchmark` in memory (fast tests);
* :func:`write_synthetic` writes the very files the released archives hold (averaged h5,
  temporal or vector per-class pickles, ``class-split/`` and the class-embedding dicts), so
  demos and tests run the real readers: ``load_gzsl_benchmark(out_root, DS, feature_dir, ...)``
  returns the same benchmark as :func:`make_synthetic_benchmark` with the same arguments.

Feature model (per class c, per video i, per step t)::

    s_c                    class semantics: unit vectors (or a given embedding dict)
    z_c = tanh(g W s_c)    shared latent, the SAME map for seen and unseen classes
    audio sees z_c[:28], video sees z_c[20:]   (each modality carries only part of z_c)
    l_i = z_c[part] + sigma_video * e_i          video-level nuisance of the class signal
    x_it = B (l_i + sigma_step * e_it) + N eta_i + sigma_ambient * n_it
    (eta_i: low-rank recording nuisance shared by both modalities)

followed by the feature family's transform: VGGish -> 8-bit quantisation of [-2, 2] to
0..255; C3D -> post-ReLU; CLAP/CLIP -> L2 normalisation (CLIP stored as float16);
averaged presets store the time mean. The text embeddings written are the class semantics
(fastText-style 300-d = s_c; CLIP 512 / CLAP 1024 = noisy random projections of s_c).

Sizes: ``size`` scales the video counts of the real benchmark (reference §2.3;
``size=1.0`` is real scale); class counts are the real ones, or come from a real
``class-split/`` folder and embedding file to mimic a real class structure.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowshot.data.av.datasets import (
    FAMILIES,
    AVDatasetSpec,
    FeatureFamily,
    dataset_spec,
    text_file_stem,
)
from lowshot.data.av.embeddings import (
    EmbeddingDict,
    attach_embeddings,
    embedding_keys,
    read_embedding_dict,
    write_embedding_dict,
)
from lowshot.data.av.featureset import CLASS_LISTS, STAGES, FeatureSet, GZSLBenchmark
from lowshot.data.av.gzsl import build_benchmark
from lowshot.data.av.h5 import write_h5_class_file
from lowshot.data.av.pickles import write_pickle_class_file
from lowshot.data.av.splits import ClassIndex, ClassSplit, load_class_split
from lowshot.data.av.tree import ClassFeatures, stage_feature_set
from lowshot.errors import DataError
from lowshot.utils.io import atomic_write_json, atomic_write_text, make_temp_dir


@dataclass(frozen=True)
class Preset:
    """A released layout to imitate.

    Attributes:
        name: preset name.
        layout: ``averaged`` (h5) | ``temporal`` (pkl ``[T, D]``) | ``vector`` (pkl ``[D]``).
        feature_dir: released folder name under ``features/``.
        split_kind: ``main`` (SeLaVi) or ``cls`` family.
        text: class-embedding dicts the released tree holds.
    """

    name: str
    layout: str
    feature_dir: str
    split_kind: str
    text: tuple[str, ...]

    @property
    def family(self) -> FeatureFamily:
        """The :class:`FeatureFamily` of this layout and split kind."""
        return FAMILIES[(self.layout, self.split_kind)]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("main_averaged", "averaged", "main_features", "main", ("fasttext",)),
        Preset("cls_averaged", "averaged", "cls_features", "cls", ("fasttext",)),
        Preset("main_temporal", "temporal", "main_features_non_averaged", "main", ("fasttext",)),
        Preset("cls_temporal", "temporal", "cls_features_non_averaged", "cls", ("fasttext",)),
        Preset("clipclap", "vector", "cls_features_non_averaged", "cls", ("clip", "clap")),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        DataError: unknown name (with a did-you-mean and the known names).
    """
    from lowshot._registry import did_you_mean

    if name not in PRESETS:
        raise DataError(
            f"unknown synthetic preset '{name}'{did_you_mean(name, list(PRESETS))}; known: {', '.join(PRESETS)}"
        )
    return PRESETS[name]


# ----------------------------------------------------------------------------------------
# generator constants (the difficulty of the task; see the module docstring)
LATENT = 48
AUDIO_PART = slice(0, 28)
VIDEO_PART = slice(20, 48)
NUISANCE_RANK = 8
SEMANTIC_DIM = 300
LATENT_GAIN = 1.0
SIGMA_VIDEO = 0.9
SIGMA_STEP = 1.0
SIGMA_AMBIENT = 0.35
NUISANCE_SCALE = 0.6
TEXT_NOISE = 0.05
#: cap on the steps simulated for an averaged feature (the mean converges anyway)
AVERAGED_MAX_STEPS = 16
NOISE_BANK = 512


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Generate with one BLAS thread: the many small matmuls are several times faster than
    with a contended thread pool, and results do not depend on the machine's thread count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional speed-up only
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *keys])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


# ----------------------------------------------------------------------------------------
# class structure


_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ru",
    "ten",
    "sa",
    "vo",
    "bri",
    "nel",
    "po",
    "da",
    "fin",
    "gu",
    "sho",
    "ter",
    "zal",
)


def _word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))


def _class_names(spec: AVDatasetSpec, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(original, manual) names in the style of the dataset, unique case-insensitively."""
    originals: list[str] = []
    manuals: list[str] = []
    seen: set[str] = set()
    while len(originals) < spec.n_classes:
        w1, w2 = _word(rng), _word(rng)
        if spec.name == "UCF":
            orig, manual = w1.capitalize() + w2.capitalize(), f"{w1.capitalize()} {w2.capitalize()}"
        elif spec.name == "ActivityNet":
            orig, manual = w1.capitalize() + w2, f"{w1.capitalize()} {w2}"
        else:
            orig = manual = f"{w1} {w2}"
        if orig.lower() in seen:
            continue
        seen.add(orig.lower())
        originals.append(orig)
        manuals.append(manual)
    return originals, manuals


def _partition(
    spec: AVDatasetSpec, n: int, rng: np.random.Generator
) -> dict[str, dict[str, np.ndarray]]:
    counts = spec.stage_classes["main"]
    n1, nvu, ntu = (
        counts["stage_1_train"],
        counts["stage_1_val_unseen"],
        counts["stage_2_test_unseen"],
    )
    perm = rng.permutation(n)
    s1 = np.sort(perm[:n1])
    vu = np.sort(perm[n1 : n1 + nvu])
    tu_main = np.sort(perm[n1 + nvu : n1 + nvu + ntu])
    n_cls = spec.stage_classes["cls"]["stage_2_test_unseen"]
    tu_cls = np.sort(rng.choice(tu_main, size=n_cls, replace=False))
    s2 = np.union1d(s1, vu)
    base = {
        "stage_1_train": s1,
        "stage_1_val_seen": s1,
        "stage_1_val_unseen": vu,
        "stage_2_train": s2,
        "stage_2_test_seen": s2,
    }
    return {
        "main": {**base, "stage_2_test_unseen": tu_main},
        "cls": {**base, "stage_2_test_unseen": tu_cls},
    }


@dataclass(frozen=True)
class SynthPlan:
    """Everything that fixes a synthetic benchmark except the per-video draws.

    Attributes:
        preset: layout preset.
        spec: dataset facts.
        seed: generator seed.
        class_split: class names, mappings and lists (synthetic or a real folder).
        semantics: ``[C, D_s]`` class semantics (unit rows).
        counts: stage folder -> ``[C]`` videos per class (0 for classes not in the folder).
        text_tables: kind -> dict written to ``text/`` (keys as in the released dicts).
        source_class_split: the real ``class-split/`` folder mimicked, or None.
    """

    preset: Preset
    spec: AVDatasetSpec
    seed: int
    class_split: ClassSplit
    semantics: np.ndarray
    counts: dict[str, np.ndarray]
    text_tables: dict[str, EmbeddingDict]
    source_class_split: Path | None = None


def _synthetic_class_split(spec: AVDatasetSpec, seed: int) -> ClassSplit:
    rng = _rng(seed, 1)
    originals, manuals = _class_names(spec, rng)
    classes = ClassIndex(originals, "<synthetic>/all_class.txt")
    by_name = dict(zip(originals, manuals))
    manual = tuple(by_name[c] for c in classes.names)
    clip = manual if spec.clip_csv else None
    groups = ("animals", "music", "sports", "vehicle", "people", "nature")
    category = (
        tuple(groups[i % len(groups)] for i in range(len(classes)))
        if spec.name == "VGGSound"
        else None
    )
    root = Path("<synthetic>") / spec.name / "class-split"
    return ClassSplit(
        root=root,
        classes=classes,
        manual=manual,
        clip=clip,
        category=category,
        lists=_partition(spec, len(classes), rng),
        mapping_file=root / spec.mapping_csv,
        clip_file=root / spec.clip_csv if spec.clip_csv else None,
    )


def _folder_classes(class_split: ClassSplit, stage: str) -> np.ndarray:
    """Classes with a file in a stage folder: the union over splits (cls folders keep
    the dropped classes, as released)."""
    return np.unique(np.concatenate([lists[stage] for lists in class_split.lists.values()]))


def _counts(
    class_split: ClassSplit, spec: AVDatasetSpec, size: float, seed: int
) -> dict[str, np.ndarray]:
    rng = _rng(seed, 4)
    out: dict[str, np.ndarray] = {}
    for stage in STAGES:
        classes = _folder_classes(class_split, stage)
        counts = np.zeros(len(class_split.class_names), np.int64)
        minimum = 2 if stage == "stage_1_train" else 1
        total = max(int(round(size * spec.stage_videos["main"][stage])), minimum * len(classes))
        share = rng.dirichlet(np.full(len(classes), 8.0))
        extra = rng.multinomial(total - minimum * len(classes), share)
        counts[classes] = minimum + extra
        out[stage] = counts
    return out


def _semantics(
    class_split: ClassSplit, embeddings: EmbeddingDict | None, source: Path | None, seed: int
) -> np.ndarray:
    rng = _rng(seed, 2)
    n = len(class_split.class_names)
    n_groups = max(2, n // 8)
    centres = rng.standard_normal((n_groups, SEMANTIC_DIM))
    group = rng.integers(0, n_groups, size=n)
    random = _unit(0.6 * centres[group] + rng.standard_normal((n, SEMANTIC_DIM)))
    if embeddings is None:
        return random.astype(np.float32)
    used = np.unique(
        np.concatenate([np.concatenate(list(v.values())) for v in class_split.lists.values()])
    )
    # the given vectors are the semantics of the classes they name (others stay random)
    kind = "fasttext" if next(iter(embeddings.values())).shape[0] == 300 else None
    if kind is None:
        raise DataError(f"{source}: synthetic class semantics expect a 300-d fastText dict")
    given = attach_embeddings(class_split, embeddings, kind, source or Path("<embeddings>"), used)
    has = np.linalg.norm(given, axis=1) > 0
    out = random.copy()
    out[has] = _unit(given[has])
    return out.astype(np.float32)


def _text_tables(
    class_split: ClassSplit, preset: Preset, semantics: np.ndarray, seed: int
) -> dict[str, EmbeddingDict]:
    rng = _rng(seed, 5)
    tables: dict[str, EmbeddingDict] = {}
    for kind in preset.text:
        if kind == "fasttext":
            vectors = semantics
        else:
            dim = 512 if kind == "clip" else 1024
            proj = rng.standard_normal((semantics.shape[1], dim)) / np.sqrt(semantics.shape[1])
            noise = (
                TEXT_NOISE
                * rng.standard_normal((semantics.shape[0], dim))
                / np.sqrt(dim)
                * np.sqrt(semantics.shape[1])
            )
            vectors = _unit(semantics @ proj + noise)
        keys = embedding_keys(class_split, kind)
        tables[kind] = {
            key: vectors[c].astype(np.float32) for c, key in enumerate(keys) if key is not None
        }
    return tables


def make_plan(
    preset: str,
    dataset: str,
    seed: int = 0,
    size: float = 0.05,
    class_split: str | Path | None = None,
    embeddings: str | Path | None = None,
    trust_pickle: bool = False,
) -> SynthPlan:
    """Fix the class structure, semantics, text dicts and video counts of a synthetic benchmark.

    Args:
        preset: one of :data:`PRESETS`.
        dataset: ``UCF`` | ``ActivityNet`` | ``VGGSound``.
        seed: generator seed.
        size: fraction of the real video counts (§2.3); every class keeps >= 1 video
            (>= 2 in stage_1_train).
        class_split: a real ``<DS>/class-split`` folder to copy the class structure from.
        embeddings: a fastText-style dict file whose vectors become the class semantics.
        trust_pickle: allow the full unpickler for an ``embeddings`` file the restricted one refuses.
    """
    if size <= 0:
        raise DataError(f"synthetic size must be > 0, got {size}")
    p = get_preset(preset)
    spec = dataset_spec(dataset)
    cs = (
        load_class_split(Path(class_split), spec)
        if class_split
        else _synthetic_class_split(spec, seed)
    )
    table = read_embedding_dict(Path(embeddings), trust_pickle) if embeddings else None
    sem = _semantics(cs, table, Path(embeddings) if embeddings else None, seed)
    texts = _text_tables(cs, p, sem, seed)
    if table is not None and "fasttext" in texts:
        texts["fasttext"] = dict(table)  # the given dict is written unchanged
    return SynthPlan(
        p,
        spec,
        seed,
        cs,
        sem,
        _counts(cs, spec, size, seed),
        texts,
        Path(class_split) if class_split else None,
    )


# ----------------------------------------------------------------------------------------
# per-video features


@dataclass(frozen=True)
class _Model:
    """Random maps of the feature model (fixed by the seed and the preset's dims)."""

    w: np.ndarray  # [D_s, LATENT]
    audio_basis: np.ndarray  # [28, D_a]
    video_basis: np.ndarray  # [28, D_v]
    audio_nuisance: np.ndarray  # [R, D_a]
    video_nuisance: np.ndarray  # [R, D_v]
    audio_bank: np.ndarray  # [NOISE_BANK, D_a] ambient noise rows
    video_bank: np.ndarray  # [NOISE_BANK, D_v]


def _model(plan: SynthPlan) -> _Model:
    rng = _rng(plan.seed, 3)
    fam = plan.preset.family
    d_s = plan.semantics.shape[1]
    n_a = AUDIO_PART.stop - AUDIO_PART.start
    n_v = VIDEO_PART.stop - VIDEO_PART.start
    return _Model(
        w=rng.standard_normal((d_s, LATENT)),
        audio_basis=rng.standard_normal((n_a, fam.audio.dim)) / np.sqrt(n_a),
        video_basis=rng.standard_normal((n_v, fam.video.dim)) / np.sqrt(n_v),
        audio_nuisance=NUISANCE_SCALE
        * rng.standard_normal((NUISANCE_RANK, fam.audio.dim))
        / np.sqrt(NUISANCE_RANK),
        video_nuisance=NUISANCE_SCALE
        * rng.standard_normal((NUISANCE_RANK, fam.video.dim))
        / np.sqrt(NUISANCE_RANK),
        audio_bank=_bank(rng, fam.audio.dim),
        video_bank=_bank(rng, fam.video.dim),
    )


def _bank(rng: np.random.Generator, dim: int) -> np.ndarray:
    # i.i.d. noise for every step of a 4096-d C3D sequence is the generator's main cost; the
    # difference of two random rows of a fixed bank is as good for our purpose
    scale = np.float32(SIGMA_AMBIENT / np.sqrt(2.0))
    return scale * rng.standard_normal((NOISE_BANK, dim), dtype=np.float32)


def _add_ambient(pre: np.ndarray, bank: np.ndarray, rng: np.random.Generator) -> None:
    """Add ``[n, D]`` ambient noise (difference of two random bank rows) to ``pre`` in place."""
    i, j = rng.integers(0, len(bank), size=(2, len(pre)))
    pre += bank[i]
    pre -= bank[j]


def _durations(spec: AVDatasetSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Clip durations in seconds: UCF short clips, ActivityNet long segments, VGGSound 10 s."""
    if spec.name == "UCF":
        return np.clip(rng.lognormal(np.log(6.0), 0.45, n), 1.5, 60.0)
    if spec.name == "ActivityNet":
        return np.clip(rng.lognormal(np.log(30.0), 0.8, n), 2.0, 240.0)
    return np.where(rng.random(n) < 0.9, 10.0, rng.uniform(3.0, 10.0, n))


def _steps(durations: np.ndarray, step: float | None) -> np.ndarray:
    return np.maximum(1, np.floor(durations / (step or 1.0) + 1e-9)).astype(np.int64)


def _transform(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "vggish":  # PCA output quantised from [-2, 2] to 0..255 (reference §6.5)
        return np.round((np.clip(x, -2.0, 2.0) + 2.0) * (255.0 / 4.0)).astype(np.uint8)
    if kind == "c3d":  # fc7 after ReLU
        return np.maximum(x - np.float32(0.1), np.float32(0.0), dtype=np.float32)
    if kind == "clap":
        return _unit(x).astype(np.float32)
    if kind == "clip":  # GPU extraction stores float16
        return _unit(x).astype(np.float16)
    return x.astype(np.float32)  # selavi


def _modality_features(
    latent: np.ndarray,
    steps: np.ndarray,
    basis: np.ndarray,
    nuisance: np.ndarray,
    bank: np.ndarray,
    eta: np.ndarray,
    kind: str,
    layout: str,
    rng: np.random.Generator,
) -> np.ndarray | list[np.ndarray]:
    """Features of one modality for n videos.

    Args:
        latent: ``[n, P]`` video-level latent part.
        steps: ``[n]`` number of steps per video.
        basis: ``[P, D]``; nuisance: ``[R, D]``; bank: ``[B, D]`` noise rows; eta: ``[n, R]``.

    Returns:
        ``[n, D]`` (averaged / vector) or a list of ``[T_i, D]`` arrays (temporal).
    """
    n = latent.shape[0]
    f32 = np.float32
    # one matmul for class signal and nuisance: [latent ; eta] @ [basis ; nuisance]
    maps = np.concatenate([basis, nuisance]).astype(f32)
    if layout == "vector":
        pre = np.concatenate([latent, eta], axis=1).astype(f32) @ maps
        _add_ambient(pre, bank, rng)
        return _transform(pre, kind)
    sim = steps if layout == "temporal" else np.minimum(steps, AVERAGED_MAX_STEPS)
    owner = np.repeat(np.arange(n), sim)
    step_latent = latent[owner] + SIGMA_STEP * rng.standard_normal((len(owner), latent.shape[1]))
    pre = np.concatenate([step_latent, eta[owner]], axis=1).astype(f32) @ maps
    _add_ambient(pre, bank, rng)
    x = _transform(pre, kind)
    bounds = np.cumsum(sim)[:-1]
    if layout == "temporal":
        return np.split(x, bounds)
    return np.stack([seg.astype(np.float32).mean(0) for seg in np.split(x, bounds)])


def _video_ids(spec: AVDatasetSpec, name: str, seed: int, start: int, n: int) -> list[str]:
    out = []
    for j in range(start, start + n):
        if spec.name == "UCF":
            out.append(f"v_{name}_g{j // 7 + 1:02d}_c{j % 7 + 1:02d}")
            continue
        digest = hashlib.blake2b(f"{seed}/{name}/{j}".encode(), digest_size=9).digest()
        yt = digest.hex()[:11]
        out.append(f"{yt}_{j % 3}" if spec.name == "ActivityNet" else f"{yt}_{(j * 7) % 300:06d}")
    return out


def generate_class(plan: SynthPlan, model: _Model, stage: str, c: int) -> ClassFeatures:
    """Draw the videos of class ``c`` in stage folder ``stage`` (independent of the others)."""
    stage_no = STAGES.index(stage)
    n = int(plan.counts[stage][c])
    rng = _rng(plan.seed, 100 + stage_no, c)
    fam = plan.preset.family
    z = np.tanh(LATENT_GAIN * plan.semantics[c] @ model.w)  # unit s_c: s_c @ w ~ N(0, 1)
    durations = _durations(plan.spec, n, rng)
    eta = rng.standard_normal((n, NUISANCE_RANK))
    audio_lat = z[AUDIO_PART] + SIGMA_VIDEO * rng.standard_normal(
        (n, AUDIO_PART.stop - AUDIO_PART.start)
    )
    video_lat = z[VIDEO_PART] + SIGMA_VIDEO * rng.standard_normal(
        (n, VIDEO_PART.stop - VIDEO_PART.start)
    )
    layout = plan.preset.layout
    audio = _modality_features(
        audio_lat,
        _steps(durations, fam.audio.step),
        model.audio_basis,
        model.audio_nuisance,
        model.audio_bank,
        eta,
        fam.audio.kind,
        layout,
        rng,
    )
    video = _modality_features(
        video_lat,
        _steps(durations, fam.video.step),
        model.video_basis,
        model.video_nuisance,
        model.video_bank,
        eta,
        fam.video.kind,
        layout,
        rng,
    )
    offset = int(sum(plan.counts[s][c] for s in STAGES[:stage_no]))
    ids = _video_ids(plan.spec, plan.class_split.class_names[c], plan.seed, offset, n)
    return ClassFeatures(c, audio, video, ids)


def iter_stage(
    plan: SynthPlan, stage: str, keep: np.ndarray | None = None, model: _Model | None = None
) -> Iterator[ClassFeatures]:
    """Classes of a stage folder in class-index order (only ``keep`` if given)."""
    model = model or _model(plan)
    classes = np.flatnonzero(plan.counts[stage])
    if keep is not None:
        classes = classes[np.isin(classes, keep)]
    for c in classes:
        yield generate_class(plan, model, stage, int(c))


# ----------------------------------------------------------------------------------------
# in-memory benchmark


def make_synthetic_benchmark(
    preset: str = "clipclap",
    dataset: str = "UCF",
    seed: int = 0,
    size: float = 0.05,
    split: str = "cls",
    text: Sequence[str] | None = None,
    class_split: str | Path | None = None,
    embeddings: str | Path | None = None,
    trust_pickle: bool = False,
    legacy_text_order: bool = False,
) -> GZSLBenchmark:
    """Synthetic benchmark in memory, equal to ``write_synthetic`` + ``load_gzsl_benchmark``.

    Args:
        preset: ``main_averaged`` | ``cls_averaged`` | ``main_temporal`` | ``cls_temporal`` | ``clipclap``.
        dataset: ``UCF`` | ``ActivityNet`` | ``VGGSound`` (real class counts).
        seed: generator seed.
        size: fraction of the real video counts (1.0 = real scale).
        split: ``main`` or ``cls`` class lists.
        text: embedding kinds to concatenate; default the preset's (``fasttext`` or ``clip, clap``).
        class_split: optional real ``class-split/`` folder to mimic.
        embeddings: optional fastText dict whose vectors are the class semantics.
        trust_pickle: allow the full unpickler for an ``embeddings`` file the restricted one refuses.
        legacy_text_order: reproduce §6.1 (as the loader would).
    """
    plan = make_plan(preset, dataset, seed, size, class_split, embeddings, trust_pickle)
    lists = plan.class_split.split_lists(split)
    model = _model(plan)
    temporal = plan.preset.layout == "temporal"
    with _single_threaded_blas():
        splits: dict[str, FeatureSet] = {
            stage: stage_feature_set(list(iter_stage(plan, stage, lists[stage], model)), temporal)
            for stage in STAGES
        }
    kinds = tuple(text) if text is not None else plan.preset.text
    missing = [k for k in kinds if k not in plan.text_tables]
    if missing:
        raise DataError(
            f"preset '{preset}' has no {missing[0]} class embeddings (it has {plan.preset.text})"
        )
    tables = [
        (k, plan.text_tables[k], Path("<synthetic>") / f"{text_file_stem(k, plan.spec)}.npy")
        for k in kinds
    ]
    first = next(iter_stage(plan, STAGES[0], lists[STAGES[0]][:1], model))
    meta = {
        "dataset": plan.spec.name,
        "feature_dir": plan.preset.feature_dir,
        "layout": plan.preset.layout,
        "audio_dtype": str(np.asarray(first.audio[0]).dtype),
        "video_dtype": str(np.asarray(first.video[0]).dtype),
        "source": "synthetic",
    }
    return build_benchmark(
        f"{plan.spec.name}/{split}",
        plan.class_split,
        split,
        splits,
        tables,
        plan.preset.family,
        legacy_text_order,
        meta,
    )


# ----------------------------------------------------------------------------------------
# writing the released layout


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _stage_csv_rows(
    plan: SynthPlan, classes: np.ndarray, folders: Sequence[str]
) -> list[list[object]]:
    spec = plan.spec
    names = plan.class_split.class_names
    rows: list[list[object]] = []
    for stage in folders:
        for c in classes:
            c = int(c)
            offset = int(sum(plan.counts[s][c] for s in STAGES[: STAGES.index(stage)]))
            for vid in _video_ids(spec, names[c], plan.seed, offset, int(plan.counts[stage][c])):
                if spec.name == "UCF":
                    rows.append([vid, names[c], c])
                elif spec.name == "ActivityNet":
                    rows.append([vid, c, names[c]])
                else:
                    yt, start = vid.rsplit("_", 1)
                    cat = plan.class_split.category[c] if plan.class_split.category else ""
                    rows.append([yt, int(start), names[c], "train", vid, c, cat])
    return rows


def write_class_split(plan: SynthPlan, out: Path) -> None:
    """Write ``class-split/`` (copying the mimicked real files where there are some)."""
    cs, spec = plan.class_split, plan.spec
    out.mkdir(parents=True, exist_ok=True)
    src = plan.source_class_split
    if src is not None:
        for name in ("all_class.txt", spec.mapping_csv, spec.clip_csv):
            if name and (src / name).is_file():
                shutil.copyfile(src / name, out / name)
    else:
        atomic_write_text(
            out / "all_class.txt", "\n".join(sorted(cs.class_names, key=str.lower)) + "\n"
        )
        header = ["original", "manual"] + (["category"] if cs.category else [])
        rows = [
            [name, cs.manual[i]] + ([cs.category[i]] if cs.category else [])
            for i, name in enumerate(cs.class_names)
        ]
        _write_csv(out / spec.mapping_csv, header, rows)
        if spec.clip_csv and cs.clip:
            rows = [[name, cs.manual[i], cs.clip[i]] for i, name in enumerate(cs.class_names)]
            _write_csv(out / spec.clip_csv, ["original", "manual", "clip_class_name"], rows)
    for split, lists in cs.lists.items():
        folder = out / f"{split}_split"
        for name in CLASS_LISTS:
            classes = lists[name]
            atomic_write_text(
                folder / f"{name}.txt", "".join(cs.class_names[c] + "\n" for c in classes)
            )
            folders = (
                ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")
                if name == "stage_2_train"
                else (name,)
            )
            _write_csv(
                folder / f"{name}.csv", spec.csv_header, _stage_csv_rows(plan, classes, folders)
            )


def _write_features(plan: SynthPlan, out: Path) -> None:
    layout = plan.preset.layout
    names = plan.class_split.class_names
    model = _model(plan)
    with _single_threaded_blas():
        for stage in STAGES:
            for cf in iter_stage(plan, stage, model=model):
                for modality, feats in (("audio", cf.audio), ("video", cf.video)):
                    path = out / modality / stage / names[cf.class_index]
                    if layout == "averaged":
                        write_h5_class_file(path.with_name(path.name + ".h5"), feats, cf.video_ids)  # type: ignore[arg-type]
                    else:
                        write_pickle_class_file(
                            path.with_name(path.name + ".pkl"), feats, cf.video_ids
                        )
    for kind, table in plan.text_tables.items():
        write_embedding_dict(
            out / "text" / f"{text_file_stem(kind, plan.spec)}.npy", table, pickled=True
        )


def _params(plan: SynthPlan, size: float) -> dict[str, object]:
    return {
        "preset": plan.preset.name,
        "dataset": plan.spec.name,
        "seed": plan.seed,
        "size": size,
        "class_split": str(plan.source_class_split) if plan.source_class_split else None,
    }


SYNTH_MARKER = ".lowshot_synth.json"


def write_synthetic(
    out_root: str | Path,
    preset: str = "clipclap",
    dataset: str = "UCF",
    seed: int = 0,
    size: float = 0.05,
    class_split: str | Path | None = None,
    embeddings: str | Path | None = None,
    trust_pickle: bool = False,
) -> Path:
    """Write a synthetic benchmark in the released layout under ``out_root``.

    Writes ``<out_root>/<DS>/class-split/`` (unless already there with the same classes)
    and ``<out_root>/<DS>/features/<feature_dir>/`` (all five stage folders of both
    modalities plus ``text/``). The feature folder is built in a temporary folder and
    renamed into place; re-running with the same arguments is a no-op.

    Returns:
        The feature folder; read it with ``load_gzsl_benchmark(out_root, dataset,
        path.name, split, text=...)``.
    """
    plan = make_plan(preset, dataset, seed, size, class_split, embeddings, trust_pickle)
    ds_dir = Path(out_root) / plan.spec.name
    final = ds_dir / "features" / plan.preset.feature_dir
    params = _params(plan, size)
    if (final / SYNTH_MARKER).is_file():
        done = json.loads((final / SYNTH_MARKER).read_text())
        if done == params:
            return final
        raise DataError(
            f"{final} already holds another synthetic benchmark ({done}); choose another output root"
        )
    if final.exists():
        raise DataError(
            f"{final} exists and was not written by write_synthetic; refusing to overwrite it"
        )
    split_dir = ds_dir / "class-split"
    if split_dir.is_dir():
        existing = load_class_split(split_dir, plan.spec)
        if existing.class_names != plan.class_split.class_names:
            raise DataError(
                f"{split_dir} holds other classes than this synthetic benchmark; choose another output root"
            )
    else:
        ds_dir.mkdir(parents=True, exist_ok=True)
        tmp_split = make_temp_dir(ds_dir, ".class-split.")
        try:
            write_class_split(plan, tmp_split)
            tmp_split.rename(split_dir)
        finally:
            shutil.rmtree(tmp_split, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(final.parent, f".{final.name}.")
    try:
        _write_features(plan, tmp)
        atomic_write_json(tmp / SYNTH_MARKER, params)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
