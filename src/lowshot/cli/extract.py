"""``lowshot extract``: videos -> features (released layouts or safe format) + class-label embeddings."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

import numpy as np

from lowshot.errors import ConfigError
from lowshot.extract.av import build_encoders


def parse_text(specs: list[str]) -> dict[str, str]:
    """``KIND=ENCODER`` words -> {kind: encoder} (kinds: fasttext, clip, clap)."""
    out = {}
    for s in specs:
        kind, sep, enc = s.partition("=")
        if not sep or kind not in ("fasttext", "clip", "clap"):
            raise ConfigError(f"--text expects KIND=ENCODER with KIND fasttext|clip|clap, got '{s}'")
        out[kind] = enc
    return out


def cmd_extract(args: argparse.Namespace) -> int:
    """Run the extraction (resumable) and write the output; print what was done."""
    from lowshot.data.av.datasets import TEXT_KINDS
    from lowshot.extract import pipeline
    from lowshot.extract.labels import class_embeddings, default_prompts, fit_slot
    from lowshot.utils.io import atomic_write_json

    out = Path(args.out)
    if args.shard_size < 1:
        raise ConfigError(f"--shard-size must be at least 1, got {args.shard_size}")
    for key in ("audio_weights", "video_weights", "text_model_dir", "word_vectors"):  # recorded for predict
        if getattr(args, key):
            setattr(args, key, str(Path(getattr(args, key)).resolve()))
    items = pipeline.scan_stage_tree(args.input)
    spec = {"audio": (args.audio, args.audio_weights), "video": (args.video, args.video_weights)}
    encoders = build_encoders(spec)
    feature_dir = args.feature_dir or pipeline.DEFAULT_DIRS[args.layout]
    if not args.safe:
        pipeline.check_family(args.layout, feature_dir, encoders["audio"], encoders["video"])  # type: ignore[arg-type]
    cache = out / ".extract_cache" / pipeline.cache_key(spec, encoders)
    ext = pipeline.extract_all(items, encoders, cache, progress=not args.no_progress,  # type: ignore[arg-type]
                               workers=args.workers, build=functools.partial(build_encoders, spec), ray=args.ray,
                               shard_size=args.shard_size)
    summary = {"videos": len(items), "extracted": len(ext.features), "skipped": ext.skipped,
               "seconds": {k: round(v, 3) for k, v in ext.timing.items()}}
    atomic_write_json(out / pipeline.SUMMARY, summary)
    classes = sorted({i.label for i in items if i.key in ext.features})
    tables, text_info = {}, {}
    for kind, enc in parse_text(args.text).items():
        prompts = args.prompts or default_prompts(kind, args.dataset)
        wv = args.word_vectors if kind == "fasttext" else None
        table = class_embeddings(classes, enc, prompts, args.text_model_dir, wv, dim=TEXT_KINDS[kind][0])
        tables[kind] = fit_slot(table, kind)
        text_info[kind] = {"encoder": enc, "prompts": prompts, "model_dir": args.text_model_dir, "word_vectors": wv,
                           "dim": len(next(iter(table.values())))}
    info = {"encoders": {m: {"name": name, "weights": weights, **encoders[m].describe()} for m, (name, weights) in spec.items()},
            "text": text_info, "layout": args.layout, "safe": args.safe}
    final = pipeline.write_output(out, args.dataset, feature_dir, args.layout, args.safe, items, ext,
                                  encoders, info, tables)  # type: ignore[arg-type]
    print(f"extracted {len(ext.features)}/{len(items)} videos ({len(ext.skipped)} skipped, see {out / pipeline.SUMMARY})")
    print(f"decode {ext.timing['decode']:.1f} s, encode {ext.timing['encode']:.1f} s "
          f"(new videos only, summed over {args.workers} worker(s))")
    print(f"features: {final}")
    return 0


def cmd_extract_labels(args: argparse.Namespace) -> int:
    """Class names -> embedding dict (released pickled ``.npy`` or ``.safetensors``)."""
    from lowshot.data.av.datasets import TEXT_KINDS
    from lowshot.data.av.embeddings import write_embedding_dict
    from lowshot.extract.labels import class_embeddings, fit_slot, parse_class_list

    path = Path(args.classes)
    names = parse_class_list(path.read_text(encoding="utf-8"), str(path))
    table = class_embeddings(names, args.encoder, args.prompts, args.model_dir, args.word_vectors,
                             dim=TEXT_KINDS[args.slot][0] if args.slot else None)
    if args.slot:
        table = fit_slot(table, args.slot)
    out = Path(args.out)
    if out.suffix not in (".npy", ".safetensors"):
        raise ConfigError(f"{out}: the output must end in .npy (released dict) or .safetensors (safe format)")
    write_embedding_dict(out, table, pickled=out.suffix == ".npy")
    print(f"{len(table)} class embeddings ({len(next(iter(table.values())))}-d) -> {out}")
    return 0


def run_demo(work: str | Path, per_class: int = 3, seconds: float = 2.0, epochs: int = 8, seed: int = 0,
             progress: bool = True) -> dict[str, Any]:
    """Make media, extract, train a small ClipClap model, classify the test clips; print each step.

    Returns:
        ``{"run": run dir, "predictions": {"seen"|"unseen": [...]}, "accuracy": {...}, "chance": {...}}``,
        accuracies as top-1 fractions of the test clips: ``seen`` and ``unseen`` among all class
        names (GZSL), ``zsl`` the unseen clips among the unseen names only.
    """
    from lowshot.cli.predict import load_predictor
    from lowshot.config.paper import load_paper_config
    from lowshot.extract.demo import CLASSES, SEEN, TEST_UNSEEN, VAL_UNSEEN, make_media
    from lowshot.extract.pipeline import list_videos
    from lowshot.extract.predict import predict
    from lowshot.recipes.gzsl import run_gzsl

    work = Path(work)
    media = work / "media"
    if not media.is_dir():
        make_media(media, per_class, seconds, seed)
    print(f"[1/3] media: {sum(1 for _ in media.rglob('*.mp4'))} clips in {media}; {len(CLASSES)} classes "
          f"'<object> with <sound>': {len(SEEN)} seen, {len(VAL_UNSEEN)} validation-unseen, "
          f"{len(TEST_UNSEEN)} test-unseen ({', '.join(TEST_UNSEEN)})")
    data = work / "data"
    argv = ["extract", str(media), str(data), "--safe", "--layout", "vector", "--feature-dir", "demo_features",
            "--text", "clip=minilm", "--prompts", "name"] + ([] if progress else ["--no-progress"])
    parser = argparse.ArgumentParser(prog="lowshot")
    register(parser.add_subparsers())
    cmd_extract(parser.parse_args(argv))
    config = load_paper_config("clipclap.ucf", [
        f"data.root={data}", "data.feature_dir=demo_features", "data.text=[clip]", f"train.epochs={epochs}",
        "train.n_batches=10", "train.batch_size=16", "train.lr=1e-3", f"train.seeds=[{seed}]",
        f"train.progress={str(progress).lower()}",
    ])  # a short schedule at a higher rate than the published 7e-5 (which assumes 20 x 300 batches of 64)
    run = work / "run"
    m = run_gzsl(config, run).means()
    print(f"[2/3] trained ClipClap-GZSL (stage 1 on the {len(SEEN)} seen classes, stage 2 adds the validation-unseen "
          f"ones): test S {m['S']:.1f} U {m['U']:.1f} HM {m['HM']:.1f} ZSL {m['ZSL']:.1f} (x100) -> {run}")
    predictor = load_predictor(run)
    seen_clips = list_videos([media / "stage_2_test_seen"])
    unseen_clips = list_videos([media / "stage_2_test_unseen"])
    preds = {"seen": predict(predictor, seen_clips, list(CLASSES), top_k=3),
             "unseen": predict(predictor, unseen_clips, list(CLASSES), top_k=3),
             "zsl": predict(predictor, unseen_clips, list(TEST_UNSEEN), top_k=1)}
    acc = {k: float(np.mean([(p.get("top") or [{"class": None}])[0]["class"] == Path(p["video"]).parent.name for p in v])) for k, v in preds.items()}
    chance = {"seen": 1 / len(CLASSES), "unseen": 1 / len(CLASSES), "zsl": 1 / len(TEST_UNSEEN)}
    print(f"[3/3] top-1 on the raw test clips (chance in brackets): seen {acc['seen']:.0%} ({chance['seen']:.0%}) and "
          f"unseen {acc['unseen']:.0%} ({chance['unseen']:.0%}) among all {len(CLASSES)} names; "
          f"unseen {acc['zsl']:.0%} ({chance['zsl']:.0%}) among the {len(TEST_UNSEEN)} unseen names")
    for p in preds["unseen"]:
        top = ", ".join(f"{t['class']} {t['prob']:.2f}" for t in p["top"])
        print(f"  {Path(p['video']).parent.name}/{Path(p['video']).name}: {top}")
    verdict = "transfers" if acc["zsl"] > chance["zsl"] else "does NOT transfer"
    print(f"zero-shot: the model {verdict} to the unseen combinations through their names "
          f"({acc['zsl']:.0%} against chance {chance['zsl']:.0%} on {len(unseen_clips)} clips)")
    return {"run": run, "predictions": preds, "accuracy": acc, "chance": chance}


def cmd_extract_demo(args: argparse.Namespace) -> int:
    """Offline media -> extract -> train -> predict unseen clips (prints each step)."""
    run_demo(args.work, args.per_class, args.seconds, args.epochs, args.seed, progress=not args.no_progress)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``extract INPUT OUT ...``, ``extract-labels`` and ``extract-demo WORK`` to ``sub``."""
    lab = sub.add_parser("extract-labels", help="class-label embeddings (app. D prompt ensembles or word averages)")
    lab.add_argument("classes", help="class names, one per line (or comma-separated)")
    lab.add_argument("out", help="OUT.npy (released pickled dict) or OUT.safetensors (safe format)")
    lab.add_argument("--encoder", default="minilm", help="minilm | glove | clip | clap | hash")
    lab.add_argument("--prompts", default="name", help="clip_actions | clip_vggsound | clap_actions | clap_vggsound | name")
    lab.add_argument("--model-dir", help="local CLIP/CLAP model directory (encoder clip/clap)")
    lab.add_argument("--word-vectors", help="fastText/GloVe/word2vec text file (word averages instead of an encoder)")
    lab.add_argument("--slot", choices=("fasttext", "clip", "clap"), help="zero-pad to a released slot's dimension")
    lab.set_defaults(func=cmd_extract_labels)
    d = sub.add_parser("extract-demo", help="end-to-end demo on offline media: extract, train, predict unseen clips")
    d.add_argument("work", help="working folder (media, data, run); re-running reuses what is there")
    d.add_argument("--per-class", type=int, default=4, help="clips per class in the training / unseen stages")
    d.add_argument("--seconds", type=float, default=3.0, help="clip length")
    d.add_argument("--epochs", type=int, default=8)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_extract_demo)
    p = sub.add_parser("extract", help="extract AV features + class-label embeddings from videos (resumable)",
                       description="INPUT/<stage>/<class>/<video> -> OUT/<DS>/{class-split,features/<dir>}.")
    p.add_argument("input", help="folder with the five stage folders, one class folder each")
    p.add_argument("out", help="data root to write (resumes from OUT/.extract_cache)")
    p.add_argument("--dataset", default="UCF", help="released dataset naming (UCF|ActivityNet|VGGSound)")
    p.add_argument("--audio", default="av.effnet_audio", help="audio encoder (av.vggish, av.clap, av.effnet_audio)")
    p.add_argument("--video", default="av.effnet_frames", help="video encoder (av.c3d, av.clip, av.effnet_frames)")
    p.add_argument("--audio-weights", help="weights file / model directory of the audio encoder")
    p.add_argument("--video-weights", help="weights file / model directory of the video encoder")
    p.add_argument("--layout", choices=("averaged", "temporal", "vector"), default="averaged")
    p.add_argument("--safe", action="store_true", help="write the safe format (any dimensions)")
    p.add_argument("--feature-dir", help="folder name under features/ (default by layout)")
    p.add_argument("--text", action="append", default=[], metavar="KIND=ENCODER",
                   help="class-label embeddings, e.g. fasttext=glove, clip=minilm, clap=clap (repeatable; "
                   "shorter vectors are zero-padded to the slot: fastText 300, CLIP 512, CLAP 1024)")
    p.add_argument("--prompts", help="prompt set (clip_actions, clip_vggsound, clap_actions, clap_vggsound, name)")
    p.add_argument("--text-model-dir", help="local CLIP/CLAP model directory for text=clip/clap")
    p.add_argument("--word-vectors", help="fastText/GloVe/word2vec text file for the fasttext slot")
    p.add_argument("--workers", type=int, default=1, help="processes encoding videos in parallel (1 thread each)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run as a Ray Data pipeline (extra 'scale') on a cluster ADDRESS, or on this machine "
                   "without one ('local'); --workers encoder actors (one GPU each when there are GPUs)")
    p.add_argument("--shard-size", type=int, default=256, metavar="N",
                   help="with --ray: videos per cache shard (one safetensors file each; resumes per shard)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_extract)
