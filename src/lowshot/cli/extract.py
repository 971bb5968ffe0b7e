"""``lowshot extract``: videos -> features (released layouts or safe format) + class-label embeddings."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

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
                               workers=args.workers, build=functools.partial(build_encoders, spec), ray=args.ray)
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


def run_demo(work: str | Path, per_class: int = 3, seconds: float = 2.0, epochs: int = 6, seed: int = 0,
             progress: bool = True) -> dict[str, Any]:
    """Make media, extract, train a small ClipClap model, predict the unseen clips; print each step.

    Returns:
        ``{"run": run dir, "predictions": [...], "unseen_top1": fraction of unseen clips named right}``.
    """
    from lowshot.cli.predict import load_predictor
    from lowshot.config.paper import load_paper_config
    from lowshot.extract.demo import SEEN, TEST_UNSEEN, VAL_UNSEEN, make_media
    from lowshot.extract.pipeline import list_videos
    from lowshot.extract.predict import predict
    from lowshot.recipes.gzsl import run_gzsl

    work = Path(work)
    media = work / "media"
    if not media.is_dir():
        make_media(media, per_class, seconds, seed)
    print(f"[1/3] media: {sum(1 for _ in media.rglob('*.mp4'))} clips in {media}")
    data = work / "data"
    argv = ["extract", str(media), str(data), "--safe", "--layout", "vector", "--feature-dir", "demo_features",
            "--text", "clip=minilm", "--prompts", "clip_actions"] + ([] if progress else ["--no-progress"])
    parser = argparse.ArgumentParser(prog="lowshot")
    register(parser.add_subparsers())
    cmd_extract(parser.parse_args(argv))
    config = load_paper_config("clipclap.ucf", [
        f"data.root={data}", "data.feature_dir=demo_features", "data.text=[clip]", f"train.epochs={epochs}",
        "train.n_batches=5", "train.batch_size=8", f"train.seeds=[{seed}]", f"train.progress={str(progress).lower()}",
    ])
    run = work / "run"
    m = run_gzsl(config, run).means()
    print(f"[2/3] trained ClipClap-GZSL on {', '.join(SEEN)}: test S {m['S']:.1f} U {m['U']:.1f} "
          f"HM {m['HM']:.1f} ZSL {m['ZSL']:.1f} (x100; tiny data) -> {run}")
    classes = list(SEEN + VAL_UNSEEN + TEST_UNSEEN)
    videos = list_videos([media / "stage_2_test_unseen"])
    preds = predict(load_predictor(run), videos, classes, top_k=3)
    right = sum(p["top"][0]["class"] == Path(p["video"]).parent.name for p in preds if "top" in p)
    print(f"[3/3] predicted {len(preds)} unseen clips among {len(classes)} class names: {right} top-1 right")
    for p in preds:
        top = ", ".join(f"{t['class']} {t['prob']:.2f}" for t in p.get("top", []))
        print(f"  {Path(p['video']).parent.name}/{Path(p['video']).name}: {top or p.get('error')}")
    return {"run": run, "predictions": preds, "unseen_top1": right / max(1, len(preds))}


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
    d.add_argument("--epochs", type=int, default=10)
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_extract)
