"""``lowshot predict VIDEO... --run RUN_DIR --classes "a, b, c"``: open-vocabulary AV classification."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lowshot.errors import ConfigError, DataError


def load_predictor(run_dir: str | Path, data_root: str | Path | None = None) -> object:
    """A :class:`~lowshot.extract.predict.Predictor` for a finished GZSL run directory.

    Args:
        run_dir: written by ``lowshot reproduce`` / the gzsl recipe.
        data_root: where the run's features live when its config has no ``data.root``.
    """
    import copy
    import os

    from lowshot.data.av.datasets import dataset_spec
    from lowshot.extract.predict import Predictor
    from lowshot.recipes.gzsl import load_final_method
    from lowshot.utils.io import load_state
    from lowshot.utils.paths import ENV_DATA_ROOT, resolve_data_root

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise DataError(f"{run_dir}: not a run directory (no config.yaml)")
    old = os.environ.get(ENV_DATA_ROOT)
    if data_root is not None:  # read by load_final_method's data loader
        os.environ[ENV_DATA_ROOT] = str(data_root)
    try:
        exp, method, bench = load_final_method(run_dir, purpose="predict")
    finally:
        if data_root is not None:
            os.environ.pop(ENV_DATA_ROOT) if old is None else os.environ.update({ENV_DATA_ROOT: old})
    root = resolve_data_root(data_root, exp.data.root, what="the run's features")
    feature_dir = root / dataset_spec(exp.data.dataset).name / "features" / exp.data.feature_dir
    best = run_dir / f"seed_{exp.train.seeds[0]}" / "checkpoints" / "stage1_best_model.safetensors"
    calibration = None
    if best.is_file():  # the stage-1 model never trained on the validation videos
        calibration = copy.deepcopy(method)
        calibration.load_state_dict(load_state(best))
    return Predictor.from_method(method, bench, feature_dir, exp.data.text, run_dir, calibration)


def cmd_predict(args: argparse.Namespace) -> int:
    """Print a top-k table (or JSON) for every video of the given files / folders."""
    from lowshot.extract.labels import parse_class_list
    from lowshot.extract.pipeline import list_videos
    from lowshot.extract.predict import predict

    if bool(args.classes) == bool(args.classes_file):
        raise ConfigError("give exactly one of --classes and --classes-file")
    if args.classes_file:
        path = Path(args.classes_file)
        classes = parse_class_list(path.read_text(encoding="utf-8"), str(path))
    else:
        classes = parse_class_list(args.classes)
    videos = list_videos(args.videos)
    if not videos:
        raise ConfigError(f"no video files in {' '.join(args.videos)}")
    predictor = load_predictor(args.run, args.data_root)
    results = predict(predictor, videos, classes, args.top_k, args.batch, args.temperature)
    if args.json:
        from lowshot.utils.io import atomic_write_json

        atomic_write_json(Path(args.json), results)
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(r["video"])
        if "error" in r:
            print(f"  skipped: {r['error']}")
            continue
        for rank, t in enumerate(r["top"], 1):
            print(f"  {rank}. {t['class']:<30} {t['prob']:6.3f}  (score {t['score']:.3f})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict VIDEO... --run RUN_DIR (--classes | --classes-file)`` to ``sub``."""
    p = sub.add_parser("predict", help="top-k classes of videos with a trained run (open vocabulary)")
    p.add_argument("videos", nargs="+", help="video files or folders (searched recursively)")
    p.add_argument("--run", required=True, help="finished run directory (lowshot reproduce / train)")
    p.add_argument("--classes", help='comma-separated class names, e.g. "dog barking, playing guitar"')
    p.add_argument("--classes-file", help="one class name per line")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--batch", type=int, default=16, help="videos per forward pass")
    p.add_argument("--temperature", type=float,
                   help="softmax temperature (default: fitted with the stage-1 model on the validation videos)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--data-root", help="data root of the run's features (else the run's data.root / $LOWSHOT_DATA_ROOT)")
    p.set_defaults(func=cmd_predict)
