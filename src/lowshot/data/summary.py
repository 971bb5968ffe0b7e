"""Counts and dimensions of a (released or converted) feature folder, for ``lowshot data inspect``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowshot.data.av_datasets import FeatureFamily, dataset_spec
from lowshot.data.class_split import load_class_split
from lowshot.data.embeddings import read_embedding_dict
from lowshot.data.feature_tree import ReleasedFeatureDir
from lowshot.data.featureset import STAGES
from lowshot.data.gzsl import dataset_dir, resolve_data_root
from lowshot.data.h5_averaged import read_h5_class_file
from lowshot.data.pickles import read_pickle_class_file
from lowshot.data.safe_format import ConvertedFeatureDir, is_converted


@dataclass
class StageSummary:
    """One stage folder: classes with files, videos, mean steps per video (audio, video)."""

    classes: int
    videos: int
    audio_steps: float
    video_steps: float


@dataclass
class FeatureDirSummary:
    """What ``lowshot data inspect`` prints."""

    path: Path
    source: str
    layout: str
    family: FeatureFamily
    stages: dict[str, StageSummary]
    class_lists: dict[str, dict[str, int]]
    text: dict[str, int] = field(default_factory=dict)
    n_classes: int = 0

    def format(self) -> str:
        fam = self.family
        lines = [
            f"{self.path} ({self.source}, {self.layout})",
            f"  classes in all_class.txt: {self.n_classes}",
            f"  audio: {fam.audio.kind} {fam.audio.dim}-d, step {fam.audio.step or '-'} s;"
            f"  video: {fam.video.kind} {fam.video.dim}-d, step {fam.video.step or '-'} s",
            f"  {'stage':<22}{'classes':>8}{'videos':>9}{'audio T':>9}{'video T':>9}",
        ]
        for stage, s in self.stages.items():
            lines.append(
                f"  {stage:<22}{s.classes:>8}{s.videos:>9}{s.audio_steps:>9.1f}{s.video_steps:>9.1f}"
            )
        for split, lists in self.class_lists.items():
            lines.append(
                f"  {split}_split classes: " + ", ".join(f"{k} {v}" for k, v in lists.items())
            )
        for name, dim in self.text.items():
            what = f"{dim}-d" if dim > 0 else "pickled dict (--trust-pickle to read it)"
            lines.append(f"  text/{name}: {what}")
        return "\n".join(lines)


def _released_stage(tree: ReleasedFeatureDir, stage: str) -> StageSummary:
    files = tree.class_files(stage)
    videos, a_steps, v_steps = 0, 0, 0
    for f in files:
        if tree.layout == "averaged":
            (n, _), _ = read_h5_class_file(f.audio, load_data=False)  # type: ignore[misc]
            videos, a_steps, v_steps = videos + n, a_steps + n, v_steps + n
            continue
        a = read_pickle_class_file(f.audio, tree.trust_pickle)
        v = read_pickle_class_file(f.video, tree.trust_pickle)
        videos += len(a.video_ids)
        a_steps += int(a.lengths.sum())
        v_steps += int(v.lengths.sum())
    n = max(videos, 1)
    return StageSummary(len(files), videos, a_steps / n, v_steps / n)


def summarize(
    root: str | Path | None, dataset: str, feature_dir: str, trust_pickle: bool = False
) -> FeatureDirSummary:
    """Summarise ``<root>/<DS>/features/<feature_dir>`` (released or converted)."""
    spec = dataset_spec(dataset)
    ds = dataset_dir(resolve_data_root(root), spec)
    cs = load_class_split(ds / "class-split", spec)
    path = ds / "features" / feature_dir
    lists = {split: {k: len(v) for k, v in ls.items()} for split, ls in cs.lists.items()}
    if is_converted(path):
        conv = ConvertedFeatureDir(path, cs.classes)
        stages = {}
        for stage, info in conv.meta["stages"].items():
            n = max(int(info["videos"]), 1)
            stages[stage] = StageSummary(
                len(info["classes"]),
                int(info["videos"]),
                info["audio_rows"] / n,
                info["video_rows"] / n,
            )
        out = FeatureDirSummary(path, "converted", conv.layout, conv.family, stages, lists)
    else:
        tree = ReleasedFeatureDir(path, cs.classes, trust_pickle)
        stages = {s: _released_stage(tree, s) for s in STAGES if (path / "audio" / s).is_dir()}
        out = FeatureDirSummary(path, "released", tree.layout, tree.family, stages, lists)
    out.n_classes = len(cs.class_names)
    text_dir = path / "text"
    for p in sorted(text_dir.glob("*")) if text_dir.is_dir() else []:
        if p.suffix == ".safetensors" or (p.suffix == ".npy" and trust_pickle):
            table = read_embedding_dict(p, trust_pickle)
            out.text[p.name] = int(np.asarray(next(iter(table.values()))).shape[0])
        elif p.suffix == ".npy":
            out.text[p.name] = -1
    return out
