"""The ``comm`` recipe: adapt a speaker online to listeners and report before/after metrics.

Citation: thesis ch. 7 (protocol: 3 episodes per update, 1800 interactions, 300 held-out
episodes; one adapter per listener). ``world: synthetic`` runs the offline world
(:mod:`lowshot.comm.world`: rendered scenes, pixel listeners, tiny speaker LM);
``world: clevr | cub | imagenet`` runs REI with an MLLM speaker loaded from a local path
(LoRA on its LLM) against MLLM or pixel listeners, on the released datasets.
``game: res`` plays RES (reward = IoU, KTO desirable at IoU >= 0.5) in the synthetic world
(multi-object scenes) or on RefCOCO (``world: refcoco``, the refer layout, with the
listener's mIoU on the human expressions as the reference), against pixel listeners or a
PaliGemma listener from a local path (its <seg> tokens decoded into masks by the big_vision
VQ-VAE decoder, also from a local path).
With a run directory every adaptation run checkpoints its state at each evaluation, and
re-running the same command resumes (finished runs are not repeated).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lowshot._registry import RECIPES, WORLDS
from lowshot.comm import mllm as _mllm  # noqa: F401  (registers the MLLM agent families)

# importing transformers/peft is deferred to run time (the comm extra is optional)
from lowshot.comm.adapt import AlgoConfig, LoopConfig, check_on_policy
from lowshot.comm.agents import agent_family
from lowshot.comm.policy import ComputeConfig, LoraSpec
from lowshot.comm.world import WorldConfig
from lowshot.config.paper import Provenance
from lowshot.config.schema import from_dict, to_dict
from lowshot.utils.results import RunResult, make_result, write_result


@dataclass(frozen=True)
class AgentConfig:
    """An agent: ``family`` (``tiny_lm``/``pixel`` = offline world, or ``llava``, ``qwen2_vl``,
    ``paligemma``) and, for MLLMs, a local ``path`` (relative paths resolve against the data
    root) plus dtype/device/generation length. A PaliGemma RES listener also needs
    ``mask_decoder``: big_vision's ``vae-oid.npz`` (a file or its directory), which decodes
    the ``<seg>`` tokens into the mask."""

    family: str = "tiny_lm"
    path: str = ""
    dtype: str = "auto"
    device: str = "auto"
    max_new_tokens: int = 64
    mask_decoder: str = ""


@dataclass(frozen=True)
class CommDataConfig:
    """Where the images come from.

    Attributes:
        root: the data root (``--data-root`` beats it; ``$LOWSHOT_DATA_ROOT`` is the fallback:
            :func:`lowshot.utils.paths.resolve_data_root`).
        path / synset_file / image_dir: relative to the data root.
        train_split / test_split: empty = the world's own (CLEVR ``train``/``val``, CUB
            ``train``/``test``, ImageNet ``train``/``val``, RefCOCO ``train``/``val``;
            RefCOCO also has ``testA``/``testB``, RefCOCOg ``test``).
        dataset / split_by: RefCOCO variant (``refcoco``, ``refcoco+``, ``refcocog``,
            ``refclef``) and its split file (``refs(<split_by>).p``: ``unc``, ``umd``, ``google``).
        image_dir: RefCOCO's COCO ``train2014`` folder (empty: ``images/mscoco/images/train2014``
            under ``path``).
        trust_pickle: RefCOCO's refs are a pickle (which can run code): read only when true.
    """

    root: str = ""
    path: str = ""
    train_split: str = ""
    test_split: str = ""
    synset_file: str = ""
    dataset: str = "refcoco"
    split_by: str = "unc"
    image_dir: str = ""
    trust_pickle: bool = False


@dataclass(frozen=True)
class CommConfig:
    """One comm experiment: which listeners, algorithms, seeds and schedule.

    Attributes:
        recipe: always ``comm``.
        name: setting name (set by the loader).
        world: a registered world: ``synthetic`` (offline world) or a dataset (``clevr``,
            ``cub``, ``imagenet``: REI; ``refcoco``: RES).
        game: a registered game (:data:`~lowshot.comm.games.GAMES`) the world plays: ``rei``
            or ``res`` (RES: the synthetic world or ``refcoco``; KTO must use ``binary_ge``
            with ``desirable_threshold`` 0.5, i.e. IoU >= 0.5 is desirable).
        speaker / listener: agents for dataset worlds (MLLMs from local paths); in the
            synthetic world ``listener`` may be an MLLM (``paligemma`` for RES) instead of
            the pixel listeners.
        data: dataset location and splits.
        test_episodes: held-out episodes for dataset worlds (thesis: 300).
        gt_speakers: instead of adapting, evaluate these ground-truth speakers
            (:data:`~lowshot.comm.gt_speaker.ABLATIONS`: ``all``, ``no_color``, ``only_shape``,
            ...) with each listener weakness on the held-out REI episodes of a world with scene
            annotations (CLEVR; thesis Figs. 7.3 / F.1).
        listeners: weaknesses of the pixel listeners, one adapter each.
        algorithms: algorithm name -> its hyperparameters (per model scale).
        seeds: one pretrained speaker per seed.
        loop: the online schedule (``loop.sampling.use_cache``: KV-cache generation).
        compute: bf16 autocast and gradient checkpointing of the speaker (large models on GPU).
        world_config: the offline world.
        provenance: paper, figure and expected numbers.
    """

    recipe: str = "comm"
    name: str = ""
    world: str = "synthetic"
    game: str = "rei"
    speaker: AgentConfig = field(default_factory=AgentConfig)
    listener: AgentConfig = field(default_factory=lambda: AgentConfig(family="pixel"))
    data: CommDataConfig = field(default_factory=CommDataConfig)
    test_episodes: int = 300
    gt_speakers: tuple[str, ...] = ()
    lora: LoraSpec = field(default_factory=lambda: LoraSpec(r=64, alpha=128.0))
    listeners: tuple[str, ...] = ("grayscale", "normal")
    algorithms: dict[str, AlgoConfig] = field(default_factory=lambda: {"kto": AlgoConfig(name="kto")})
    seeds: tuple[int, ...] = (0, 1)
    loop: LoopConfig = field(default_factory=LoopConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    world_config: WorldConfig = field(default_factory=WorldConfig)
    provenance: Provenance = field(default_factory=Provenance)


def comm_world(name: str, where: str = "comm") -> Any:
    """The registered world ``name`` (:class:`~lowshot.comm.world.World` or a
    :class:`~lowshot.comm.datasets.DatasetWorld`); unknown names fail with a did-you-mean."""
    import lowshot.comm.datasets  # noqa: F401  (registers the dataset worlds)
    from lowshot.errors import ConfigError

    try:
        return WORLDS.get(name)
    except ConfigError as err:
        raise ConfigError(f"{where}: world: {err}") from None


def game_rules(name: str, where: str = "comm") -> Any:
    """The registered game ``name`` (:class:`~lowshot.comm.games.GameRules` instance);
    unknown names fail with a did-you-mean."""
    from lowshot.comm.games import GAMES
    from lowshot.errors import ConfigError

    try:
        return GAMES.get(name)()
    except ConfigError as err:
        raise ConfigError(f"{where}: game: {err}") from None


def load_config(mapping: dict[str, Any]) -> CommConfig:
    """Strictly validate a mapping (YAML + overrides) into :class:`CommConfig`."""
    from lowshot.errors import ConfigError

    where = str(mapping.get("name", "comm"))
    cfg = from_dict(CommConfig, mapping, where=where)
    algos = {k: replace(v, name=k) if v.name != k else v for k, v in cfg.algorithms.items()}
    world = comm_world(cfg.world, where)
    lora = cfg.world_config.lora if world.offline else cfg.lora
    for name in algos:
        check_on_policy(name, cfg.loop.sampling, lora.dropout, where)
    speaker = agent_family(cfg.speaker.family, "speaker", where)
    listener = agent_family(cfg.listener.family, "listener", where)
    if world.offline and speaker.model_backed:
        raise ConfigError(f"{where}: speaker.family: the synthetic world trains its own tiny_lm speaker, "
                          f"not '{cfg.speaker.family}'")
    rules = game_rules(cfg.game, where)
    if cfg.gt_speakers:
        from lowshot.comm.gt_speaker import ABLATIONS

        unknown = [g for g in cfg.gt_speakers if g not in ABLATIONS]
        if unknown:
            raise ConfigError(f"{where}: gt_speakers: unknown {unknown} (known: {', '.join(ABLATIONS)})")
        if world.offline or rules.segments:
            raise ConfigError(f"{where}: gt_speakers evaluate REI on a dataset world with scenes (clevr); "
                              "the synthetic world's GT table is `lowshot comm gt`")
    if cfg.game not in world.games:
        raise ConfigError(f"{where}: world '{cfg.world}' does not play game '{cfg.game}' "
                          f"(it plays: {', '.join(world.games)})")
    if rules.segments and cfg.world_config.train_abstain_on_ties:
        raise ConfigError(f"{where}: world_config.train_abstain_on_ties is an REI option (two images to tie); "
                          f"game '{cfg.game}' scores masks")
    if rules.segments:
        kto = algos.get("kto")
        if kto is not None and not (kto.binary_ge and kto.desirable_threshold == 0.5):
            raise ConfigError(f"{where}: {cfg.game.upper()} KTO labels episodes by IoU >= 0.5: set "
                              "algorithms.kto.binary_ge=true and desirable_threshold=0.5")
        if listener.model_backed and not cfg.listener.mask_decoder:
            raise ConfigError(f"{where}: listener.mask_decoder is empty: a {cfg.listener.family} {cfg.game.upper()} "
                              "listener decodes its <seg> tokens with big_vision's vae-oid.npz")
    return replace(cfg, algorithms=algos)


def _history_logger(rd: Any, **keys: Any) -> Any:
    """``on_record`` that appends to the run history, skipping records a resumed run repeats."""
    if rd is None:
        return None
    seen = {r["interactions"] for r in rd.history() if all(r.get(k) == v for k, v in keys.items())}

    def on_record(m: dict[str, Any]) -> None:
        if m["interactions"] not in seen:
            seen.add(m["interactions"])
            rd.append_history({**keys, **m})

    return on_record


def _run_record(seed: int, algo: str, listener: str, res: Any) -> dict[str, Any]:
    return {"seed": seed, "algorithm": algo, "listener": listener, "before": res.initial,
            "after": res.final, "best": res.best, "best_interactions": res.best_interactions,
            "seconds": res.seconds, "curve": res.curve}


def run_world(cfg: CommConfig, run_dir: Path | None = None, log: Any = print) -> RunResult:
    """Pretrain one speaker per seed, adapt a fresh adapter per (algorithm, listener), evaluate.

    Returns:
        The result (:func:`comm_result`): before/after metrics per (algorithm, listener) over
        seeds; ``extra.runs`` the learning curve of each (seed, algorithm, listener).
    """
    import torch

    from lowshot.comm.adapt import adapt
    from lowshot.comm.world import World
    from lowshot.utils.rundir import RunDir

    rd = RunDir(run_dir) if run_dir is not None else None
    if rd is not None:
        rd.write_config(cfg)
    # scripted listeners come from the world itself (seeded per game); a model-backed one is
    # loaded once and weakened per run
    family = agent_family(cfg.listener.family, "listener", cfg.name)
    segments = game_rules(cfg.game, cfg.name).segments
    mllm_listener = family.listener(cfg.listener, cfg.listener.path, segments) if family.model_backed else None
    loop = replace(cfg.loop, sampling=replace(cfg.loop.sampling, max_new_tokens=2 * cfg.world_config.budget),
                   eval_max_new_tokens=2 * cfg.world_config.budget)
    runs: list[dict[str, Any]] = []
    for seed in cfg.seeds:
        t0 = time.perf_counter()
        world = World(cfg.world_config, seed, cfg.game)
        world.pretrain()
        log(f"[seed {seed}] speaker pretrained in {time.perf_counter() - t0:.1f}s")
        # one model in memory; each (algorithm, listener) gets its own adapter, which starts
        # at pi_0 (LoRA B = 0) and is swapped in without reloading anything
        policy = world.policy(cfg.compute)
        for algo_name, algo in cfg.algorithms.items():
            for weakness in cfg.listeners:
                adapter = f"{algo_name}-{weakness}"
                policy.add_adapter(adapter)
                ckpt = rd.path / "checkpoints" / f"seed{seed}" / adapter if rd is not None else None
                on_record = _history_logger(rd, seed=seed, algorithm=algo_name, listener=weakness)
                res = adapt(policy, world.game(weakness, seed, mllm_listener), algo, loop, seed=seed,
                            checkpoint_dir=ckpt, on_record=on_record)
                runs.append(_run_record(seed, algo_name, weakness, res))
                miou = (f"  mIoU {res.initial['miou']:.3f} -> {res.final['miou']:.3f}"
                        if "miou" in res.final else "")
                log(f"[seed {seed}] {algo_name:4s} {weakness:9s} success {res.initial['success_rate']:.3f}"
                    f" -> {res.final['success_rate']:.3f}{miou}  colour-word rate "
                    f"{res.initial['color_word_rate']:.2f} -> {res.final['color_word_rate']:.2f}"
                    f"  ({res.seconds:.0f}s)")
                torch.manual_seed(seed)
    result = comm_result(cfg, runs)
    if rd is not None:
        write_result(rd.path, result)
    return result


#: metric name -> key of the before/after evaluation dicts (mIoU: RES only)
COMM_METRICS = {"success": "success_rate", "color": "color_word_rate", "miou": "miou"}


def comm_result(cfg: CommConfig, runs: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> RunResult:
    """The run result of adaptation ``runs`` (:mod:`lowshot.utils.results`, values 0-1).

    Metrics are ``<algorithm>/<listener>/<name>_<before|after>`` with name ``success``,
    ``color`` (colour-word rate) and, for RES, ``miou``; mean and population std over seeds.
    ``extra.runs`` holds each (seed, algorithm, listener) run with its learning curve.
    """
    per_seed: dict[int, dict[str, float]] = {}
    for r in runs:
        group = f"{r['algorithm']}/{r['listener']}"
        per_seed.setdefault(r["seed"], {}).update(
            {f"{group}/{name}_{when}": r[when][key] for name, key in COMM_METRICS.items()
             for when in ("before", "after") if key in r[when]})
    return make_result(
        setting=cfg.name, family="comm", method="+".join(cfg.algorithms), per_seed=per_seed, unit="fraction",
        selection="last (online adaptation; held-out episodes)", config=to_dict(cfg),
        provenance=to_dict(cfg.provenance), metric_order=list(dict.fromkeys(k for v in per_seed.values() for k in v)),
        extra={"game": cfg.game, "world": cfg.world, "runs": runs, **(extra or {})},
    )  # fmt: skip


def _pool(cfg: CommConfig, root: Path, which: str) -> list[Any]:
    """The ``which`` (``train`` / ``test``) pool of a dataset world, from the config's split
    (or the world's default split)."""
    world = comm_world(cfg.world, cfg.name)
    split = getattr(cfg.data, f"{which}_split") or world.splits[0 if which == "train" else 1]
    base = root / cfg.data.path if cfg.data.path else root
    options = {"synset_file": root / cfg.data.synset_file if cfg.data.synset_file else None,
               "image_dir": root / cfg.data.image_dir if cfg.data.image_dir else None,
               "dataset": cfg.data.dataset, "split_by": cfg.data.split_by, "trust_pickle": cfg.data.trust_pickle}
    return world.pool(base, split, options)


def _resolve(path: str, root: Path | None) -> str:
    p = Path(path)
    return str(root / p) if root is not None and not p.is_absolute() and (root / p).exists() else path


def human_reference(rules: Any, listener: Any, episodes: Sequence[Any]) -> dict[str, float] | None:
    """RES: the listener's metrics on the annotated (human) expressions of ``episodes``
    (the first expression of each target; thesis: mIoU 0.63 / 0.56 / 0.61 for PaliGemma with
    normal / blurred / colour-blind vision), or None when the episodes carry no expressions."""
    if not rules.segments or not all(getattr(e, "gt_expressions", ()) for e in episodes):
        return None
    return rules.evaluate(lambda eps: [e.gt_expressions[0] for e in eps], listener, episodes, batch_size=8)


def run_dataset(cfg: CommConfig, run_dir: Path | None, data_root: Path | None,
                log: Any = print) -> RunResult:
    """REI or RES on a released dataset with an MLLM speaker (LoRA per listener) and
    MLLM/pixel listeners; RES also reports the listener's mIoU on the human expressions
    (``extra.human_reference``)."""
    import numpy as np

    from lowshot.comm.adapt import Game, adapt
    from lowshot.comm.agents import Weakened
    from lowshot.comm.mllm import MLLMSpeaker, load_mllm
    from lowshot.comm.perception import make_weakness
    from lowshot.comm.policy import SpeakerPolicy
    from lowshot.errors import ConfigError
    from lowshot.utils.paths import resolve_data_root
    from lowshot.utils.rundir import RunDir

    data_root = resolve_data_root(data_root, cfg.data.root, what=f"world '{cfg.world}'")
    if not (agent_family(cfg.speaker.family, "speaker", cfg.name).model_backed and cfg.speaker.path):
        raise ConfigError(f"{cfg.name}: dataset worlds need an MLLM speaker: speaker.family and speaker.path")
    rd = RunDir(run_dir) if run_dir is not None else None
    if rd is not None:
        rd.write_config(cfg)
    rules = game_rules(cfg.game, cfg.name)
    train_pool = _pool(cfg, data_root, "train")
    test_pool = _pool(cfg, data_root, "test")
    sp = load_mllm(cfg.speaker.family, _resolve(cfg.speaker.path, data_root), cfg.speaker.device,
                   cfg.speaker.dtype, cfg.speaker.max_new_tokens)
    listener_cfg = replace(cfg.listener, mask_decoder=_resolve(cfg.listener.mask_decoder, data_root))
    base_listener = agent_family(cfg.listener.family, "listener", cfg.name).listener(
        listener_cfg, _resolve(cfg.listener.path, data_root), segments=rules.segments)
    speaker = MLLMSpeaker(sp)
    policy = SpeakerPolicy(sp.model, sp.tokenizer, speaker.encode_res if rules.segments else speaker.encode_rei,
                           cfg.lora, sp.family.pass_position_ids, cfg.compute)
    loop = replace(cfg.loop, eval_max_new_tokens=cfg.speaker.max_new_tokens)
    runs: list[dict[str, Any]] = []
    references: dict[str, dict[str, float]] = {}
    for seed in cfg.seeds:
        test_eps = rules.sample(test_pool, cfg.test_episodes, np.random.default_rng(10_000 + seed))
        for weakness in cfg.listeners:
            listener = Weakened(base_listener, make_weakness(weakness, cfg.world_config.blur_radius))
            ref = human_reference(rules, listener, test_eps)
            if ref is not None:
                references[f"{weakness}/s{seed}"] = ref
                log(f"[seed {seed}] human expressions, {weakness} listener: mIoU {ref['miou']:.3f}")
            for algo_name, algo in cfg.algorithms.items():
                adapter = f"{algo_name}-{weakness}-s{seed}"
                policy.add_adapter(adapter)

                def play(eps, msgs, listener=listener):
                    return rules.play(eps, msgs, listener)

                def evaluate(describe, listener=listener, test_eps=test_eps):
                    return rules.evaluate(describe, listener, test_eps, batch_size=8)

                game = Game(lambda n, rng: rules.sample(train_pool, n, rng), play, evaluate, rules.metric)
                ckpt = rd.path / "checkpoints" / adapter if rd is not None else None
                on_record = _history_logger(rd, seed=seed, algorithm=algo_name, listener=weakness)
                res = adapt(policy, game, algo, loop, seed=seed, checkpoint_dir=ckpt, on_record=on_record)
                runs.append(_run_record(seed, algo_name, weakness, res))
                log(f"[seed {seed}] {algo_name} {weakness}: {rules.metric} {res.initial[rules.metric]:.3f} -> "
                    f"{res.final[rules.metric]:.3f}")
    result = comm_result(cfg, runs, {"human_reference": references} if references else None)
    if rd is not None:
        write_result(rd.path, result)
    return result


def run_gt(cfg: CommConfig, run_dir: Path | None, data_root: Path | None,
           log: Any = print) -> RunResult:
    """Success of the GT speakers ``cfg.gt_speakers`` with each listener weakness on the
    held-out REI episodes of a dataset world with scene annotations (thesis Figs. 7.3 / F.1).

    Returns:
        the run result; metrics ``gt/<speaker>/<weakness>/success`` (mean and std over seeds),
        ``extra.runs`` every (seed, speaker, listener) evaluation.
    """
    import numpy as np

    from lowshot.comm.agents import Weakened
    from lowshot.comm.games import evaluate_rei
    from lowshot.comm.gt_speaker import ABLATIONS, GTSpeaker
    from lowshot.comm.perception import make_weakness
    from lowshot.errors import DataError
    from lowshot.utils.paths import resolve_data_root
    from lowshot.utils.rundir import RunDir

    data_root = resolve_data_root(data_root, cfg.data.root, what=f"world '{cfg.world}'")
    rd = RunDir(run_dir) if run_dir is not None else None
    if rd is not None:
        rd.write_config(cfg)
    rules = game_rules(cfg.game, cfg.name)
    pool = _pool(cfg, data_root, "test")
    if not all(it.scene is not None for it in pool):
        raise DataError(f"{cfg.name}: GT speakers need scene annotations; world '{cfg.world}' has none")
    base = agent_family(cfg.listener.family, "listener", cfg.name).listener(
        cfg.listener, _resolve(cfg.listener.path, data_root), segments=False)
    runs = []
    for seed in cfg.seeds:
        eps = rules.sample(pool, cfg.test_episodes, np.random.default_rng(10_000 + seed))
        for weakness in cfg.listeners:
            listener = Weakened(base, make_weakness(weakness, cfg.world_config.blur_radius))
            for name in cfg.gt_speakers:
                m = evaluate_rei(GTSpeaker(types=ABLATIONS[name]).describe, listener, eps, batch_size=8)
                runs.append({"seed": seed, "speaker": name, "listener": weakness, **m})
                log(f"[seed {seed}] GT speaker {name:12s} {weakness:9s} success {m['success_rate']:.3f}")
    per_seed: dict[int, dict[str, float]] = {}
    for r in runs:
        per_seed.setdefault(r["seed"], {})[f"gt/{r['speaker']}/{r['listener']}/success"] = r["success_rate"]
    result = make_result(
        setting=cfg.name, family="comm", method="gt_speaker", per_seed=per_seed, unit="fraction",
        selection="none (fixed ground-truth speakers; held-out episodes)", config=to_dict(cfg),
        provenance=to_dict(cfg.provenance), metric_order=list(dict.fromkeys(k for v in per_seed.values() for k in v)),
        extra={"game": cfg.game, "world": cfg.world, "runs": runs},
    )  # fmt: skip
    if rd is not None:
        write_result(rd.path, result)
    return result


def run_config(cfg: CommConfig, run_dir: Path | None, data_root: Path | None = None) -> RunResult:
    """Run a validated config: the synthetic world (:func:`run_world`), GT-speaker evaluations
    (:func:`run_gt`) or adaptation on a dataset world (:func:`run_dataset`)."""
    if comm_world(cfg.world, cfg.name).offline:
        return run_world(cfg, run_dir)
    if cfg.gt_speakers:
        return run_gt(cfg, run_dir, data_root)
    return run_dataset(cfg, run_dir, data_root)


@RECIPES.register("comm")
def comm_recipe(config: dict[str, Any], run_dir: Path, data_root: Path | None = None) -> RunResult:
    """``lowshot reproduce comm.<setting>`` entry point."""
    return run_config(load_config(config), Path(run_dir), data_root)


__all__ = ["AgentConfig", "CommConfig", "CommDataConfig", "load_config", "run_config", "run_world", "run_dataset",
           "run_gt", "human_reference", "comm_result", "comm_recipe"]
