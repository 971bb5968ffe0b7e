"""Run the published ReGaDa ``train.py`` on CPU without editing it (executed by the upstream Python).

Usage::

    <upstream-python> regada_shim.py --embeddings TEXTS.pt --evals EVALS.jsonl <repo> [hydra overrides...]

On top of the generic device shims of ``upstream_shim.py`` (``.cuda()`` no-op, loaders in
the main process, ``torch.load`` to the CPU), this only changes what the published code
reads and what it reports, never what it computes:

* word embeddings: ``models.text_embedder.load_word_embeddings`` returns the rows of
  ``TEXTS.pt`` (``{"texts": [...], "embeddings": [N, D]}``, written by the harness with
  lowshot's S3D text module) for the requested vocabulary, in its order. The published
  loader would build the full S3D network, load a full S3D-HowTo100M checkpoint and move
  it to the GPU; the harness data has only the text module, shared by both sides;
* ``tb_logger``: a no-op stand-in (the published module imports
  ``collections.MutableMapping``, gone since Python 3.10, and needs tensorboard; it only
  writes event files);
* ``test.test`` (the evaluation ``train.py`` imports) is wrapped to append each
  evaluation's metrics and its start/end time to ``EVALS.jsonl``: the published code
  keeps only each metric's running maximum, the table also shows the epoch and the
  training time per epoch.

This file imports nothing from lowshot (the upstream environment does not have it).
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import upstream_shim  # noqa: E402  (the generic device shims, beside this file)


class _NoTbLogger:
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        pass

    def __getattr__(self, name: str):  # noqa: ANN204
        return lambda *args, **kwargs: None


def _patch_tb_logger() -> None:
    mod = types.ModuleType("tb_logger")
    mod.TbLogger = _NoTbLogger  # type: ignore[attr-defined]
    sys.modules["tb_logger"] = mod


def _patch_embeddings(path: Path) -> None:
    import models.text_embedder as text_embedder  # the published package, on sys.path
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=False)
    row = {t: i for i, t in enumerate(saved["texts"])}
    emb = torch.as_tensor(saved["embeddings"]).float()

    def load_word_embeddings(emb_type, vocab, feature_dir):  # noqa: ANN001, ANN202
        missing = [t for t in vocab if t not in row]
        if missing:
            raise KeyError(f"{path}: no embedding for {missing[:5]}")
        return emb[[row[t] for t in vocab]]

    text_embedder.load_word_embeddings = load_word_embeddings


def _patch_test(evals: Path) -> None:
    import test as test_module  # the published test.py (the repo is first on sys.path)

    if not hasattr(test_module, "Evaluator"):
        raise ImportError(f"'import test' found {test_module.__file__}, not the published test.py")
    published_test = test_module.test
    calls = [0]

    def recorded_test(args, *rest, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        t_in = time.perf_counter()
        metrics, losses = published_test(args, *rest, **kwargs)
        rec = {
            "epoch": calls[0] * int(args.eval_interval),
            "t_in": t_in,
            "t_out": time.perf_counter(),
            "metrics": {k: float(v) for k, v in metrics.items()},
        }
        calls[0] += 1
        with evals.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        return metrics, losses

    test_module.test = recorded_test


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--embeddings", type=Path, required=True)
    p.add_argument("--evals", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("repo", type=Path)
    p.add_argument("overrides", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    repo = a.repo.resolve()
    sys.path.insert(0, str(repo))
    upstream_shim._patch_torch(a.threads)
    _patch_tb_logger()
    _patch_embeddings(a.embeddings.resolve())
    _patch_test(a.evals.resolve())
    sys.argv = [str(repo / "train.py"), *a.overrides]
    runpy.run_path(str(repo / "train.py"), run_name="__main__")


if __name__ == "__main__":
    main()
