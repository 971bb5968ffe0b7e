"""Conversion and loading figures of the safe format on a large synthetic temporal tree.

Writes a VGGSound-cls-like temporal tree (VGGish uint8 + C3D 4096 float32 pickles) at
``--size`` of the real video counts, converts it with ``convert_feature_dir`` and loads it
with ``load_gzsl_benchmark``; each phase runs in its own process so its peak RSS is its own.

    python benchmarks/data_convert.py --size 0.1 --work /tmp/lowshot_bench
    python benchmarks/data_convert.py --size 0.25 --phases write,convert,train_converted --setting avca.vggsound_cls
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

PHASES = {
    "write": "from lowshot.data.av.synth import write_synthetic as w; w({src!r}, preset='cls_temporal', dataset='VGGSound', seed=0, size={size})",
    "convert": "from lowshot.data.av.safe_format import convert_feature_dir as c; c({src!r}, 'VGGSound', 'cls_features_non_averaged', {out!r}, trust_pickle=True)",
    "load_released": "from lowshot.data.av.gzsl import load_gzsl_benchmark as l; b = l({src!r}, 'VGGSound', 'cls_features_non_averaged', 'cls', trust_pickle=True)",
    "load_converted": (
        "from lowshot.data.av.gzsl import load_gzsl_benchmark as l; import numpy as np, time; "
        "b = l({out!r}, 'VGGSound', 'cls_features_non_averaged', 'cls'); tr = b.stage_train(2); "
        "t = time.perf_counter(); idx = np.random.default_rng(0).choice(len(tr), 64, replace=False); "
        "x = [np.asarray(tr.video[int(i)]) for i in idx]; "
        "print('batch64_ms', 1000 * (time.perf_counter() - t))"
    ),
    # training steps of a paper setting on the memory-mapped converted tree (stage 2: the
    # largest training set); the first batch is excluded (page faults of the first reads)
    "train_converted": (
        "import numpy as np, torch, time; torch.set_num_threads(1); "
        "from lowshot.data.av.gzsl import load_gzsl_benchmark as l; "
        "from lowshot.config.paper import load_paper_config; "
        "from lowshot.methods.base import GZSLMethod, method_of_family; "
        "from lowshot.recipes.gzsl import input_spec, parse_experiment; "
        "from lowshot.recipes.gzsl_trainer import MethodTrainer; "
        "b = l({out!r}, 'VGGSound', 'cls_features_non_averaged', 'cls'); "
        "exp, mc = parse_experiment(load_paper_config({setting!r}, ['train.n_batches=1'])); "
        "torch.manual_seed(0); m = method_of_family(exp.method, GZSLMethod, 'gzsl')(mc, input_spec(b)); "
        "tr = MethodTrainer(m, b, 2, exp.train, seed=0, device=torch.device('cpu')); tr.train_epoch(0); "
        "tr.config = type(tr.config)(**{{**tr.config.__dict__, 'n_batches': {steps}}}); "
        "t, c = time.perf_counter(), time.process_time(); tr.train_epoch(1); "
        "print('train_videos', len(tr.train_set), 'batch', exp.train.batch_size, "
        "'ms_per_step', round(1000 * (time.perf_counter() - t) / {steps}, 1), "
        "'cpu_ms_per_step', round(1000 * (time.process_time() - c) / {steps}, 1)); "
        "st = dict(line.split(':') for line in open('/proc/self/status') if line.startswith('Rss')); "
        "print('rss_anon_mib', int(st['RssAnon'].split()[0]) // 1024, 'rss_file_mib', int(st['RssFile'].split()[0]) // 1024)"
    ),
}


def run_phase(code: str) -> tuple[float, float, str]:
    """(seconds of ``code`` after imports, peak RSS GiB of that process, other stdout), run in
    a fresh interpreter."""
    code = (
        "import resource, time, lowshot.data.av.gzsl, lowshot.data.av.safe_format, lowshot.data.av.synth\n"
        "_start = time.perf_counter()\n"
        f"{code}\n"
        "print('SECONDS', time.perf_counter() - _start)\n"
        "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = proc.stdout.strip().splitlines()
    seconds = float(lines[-2].split()[1])
    peak_kib = int(lines[-1].split()[1])
    return seconds, peak_kib / 2**20, " ".join(lines[:-2])


def du(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=0.1)
    parser.add_argument("--work", default="/tmp/lowshot_bench")
    parser.add_argument("--phases", default="write,convert,load_converted,load_released")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--setting", default="tcaf.vggsound_cls", help="paper setting of train_converted")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps of train_converted")
    args = parser.parse_args()
    work = Path(args.work)
    src, out = work / "src", work / "out"
    results = {}
    for phase in args.phases.split(","):
        seconds, peak, stdout = run_phase(
            PHASES[phase].format(src=str(src), out=str(out), size=args.size, setting=args.setting, steps=args.steps)
        )
        results[phase] = {
            "seconds": round(seconds, 1),
            "peak_rss_gib": round(peak, 2),
            "stdout": stdout,
        }
        print(phase, results[phase], flush=True)
    results["src_gib"] = round(du(src), 2) if src.exists() else None
    results["out_gib"] = round(du(out), 2) if out.exists() else None
    print(json.dumps(results, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
