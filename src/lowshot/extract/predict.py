"""Open-vocabulary audio-visual classification of raw videos with a trained GZSL run.

The run directory names its data (``config.yaml``); the feature folder it was trained on
holds ``extract.json`` (written by ``lowshot extract``), which names the audio / video
encoders and how the class-label embeddings were made. Videos are decoded and encoded the
same way, pooled as the feature layout is (time mean for ``averaged``/``vector``, sequences
for ``temporal``), and scored against the embeddings of the classes the user gives
(``method.class_scores``). Scores become probabilities by a softmax over the given classes
with a temperature fitted on the run's stage-1 validation videos (temperature scaling: the
value on a log grid with the least negative log-likelihood over the stage-1 classes), scored by
the stage-1 best model, which never trained on them (the final model did, in stage 2; it is
used only when no stage-1 model is given). The validation videos also chose that stage-1
model, so the temperature still errs on the confident side; ``--temperature`` overrides it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowshot.data.av.datasets import TEXT_KINDS
from lowshot.data.av.featureset import FeatureSet, SequenceStore
from lowshot.errors import DataError
from lowshot.extract.av import build_encoder
from lowshot.extract.base import AVEncoder
from lowshot.extract.labels import check_class_names, class_embeddings, fit_slot
from lowshot.extract.media import MediaError
from lowshot.extract.pipeline import encode_video, read_info


@dataclass
class Predictor:
    """A trained method with the encoders and text settings of its features."""

    method: Any
    encoders: dict[str, AVEncoder]
    text: dict[str, dict[str, Any]]
    text_order: tuple[str, ...]
    layout: str
    temperature: float = 1.0

    @classmethod
    def from_method(cls, method: Any, bench: Any, feature_dir: Path, text_order: Sequence[str],
                    where: str | Path, calibration: Any = None) -> Predictor:
        """A trained ``method`` (with its benchmark) and the encoders recorded in ``feature_dir``.

        Args:
            method: the trained GZSL method (``spec``, ``collate``, ``class_scores``).
            bench: its benchmark (stage-1 validation data for the temperature).
            feature_dir: the feature folder it was trained on (holds ``extract.json``).
            text_order: class-embedding kinds concatenated in training (``data.text``).
            where: the run, for messages.
            calibration: the stage-1 model that fits the temperature (None: ``method``).

        Raises:
            DataError: features not made by ``lowshot extract``, or encoders whose dimensions
                differ from the checkpoint's inputs.
        """
        info = read_info(feature_dir)
        encs = {m: build_encoder(e["name"], e.get("weights"), m) for m, e in info["encoders"].items()}  # type: ignore[union-attr]
        spec = method.spec
        for m, want in (("audio", spec.audio_dim), ("video", spec.video_dim)):
            if encs[m].dim != want:
                raise DataError(f"{where}: the checkpoint takes {want}-d {m} features, but the encoder "
                                f"{info['encoders'][m]['name']} gives {encs[m].dim}-d")  # type: ignore[index]
        missing = [k for k in text_order if k not in info.get("text", {})]  # type: ignore[operator]
        if missing:
            raise DataError(f"{where}: the features' extract.json does not say how the {missing[0]} class "
                            "embeddings were made; predict needs it to embed new class names")
        method.eval()
        return cls(method, encs, info["text"], tuple(text_order), str(info["layout"]),  # type: ignore[arg-type]
                   fit_temperature(method if calibration is None else calibration.eval(), bench))

    def class_matrix(self, names: Sequence[str]) -> torch.Tensor:
        """``[C, D_w]`` embeddings of ``names`` made as at extraction, concatenated as in training."""
        names = check_class_names(names)
        parts = []
        for kind in self.text_order:
            t = self.text[kind]
            table = fit_slot(class_embeddings(names, t["encoder"], t["prompts"], t.get("model_dir"),
                                              t.get("word_vectors"), dim=TEXT_KINDS[kind][0]), kind)
            parts.append(np.stack([table[n] for n in names]))
        emb = torch.from_numpy(np.concatenate(parts, axis=1))
        if emb.shape[1] != self.method.spec.text_dim:
            raise DataError(f"class embeddings are {emb.shape[1]}-d, the checkpoint takes {self.method.spec.text_dim}-d")
        return emb

    def features(self, path: Path) -> dict[str, np.ndarray]:
        """modality -> ``[T, D]`` (temporal) or ``[D]`` features of one video (MediaError if unusable)."""
        feats, _ = encode_video(path, self.encoders)
        return feats if self.layout == "temporal" else {m: f.mean(0) for m, f in feats.items()}

    @torch.no_grad()
    def scores(self, feats: list[dict[str, np.ndarray]], classes: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` method scores of a batch of videos' features."""
        n = len(feats)
        if self.layout == "temporal":
            audio: Any = SequenceStore.from_arrays([f["audio"] for f in feats])
            video: Any = SequenceStore.from_arrays([f["video"] for f in feats])
        else:
            audio, video = (np.stack([f[m] for f in feats]) for m in ("audio", "video"))
        fs = FeatureSet(audio, video, np.zeros(n, np.int64), np.array([str(i) for i in range(n)]))
        batch = self.method.collate(fs, np.arange(n), None, train=False)
        return self.method.class_scores(batch, classes).float()


@torch.no_grad()
def fit_temperature(method: Any, bench: Any, grid: np.ndarray | None = None) -> float:
    """Temperature (log grid 1e-3..1e3) minimising the NLL of the stage-1 validation videos
    over the stage-1 classes (seen + unseen validation classes)."""
    grid = np.logspace(-3, 3, 61) if grid is None else grid
    classes = np.unique(np.concatenate([bench.split_classes[k] for k in
                                        ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")]))
    emb = torch.from_numpy(np.asarray(bench.class_embeddings[classes], np.float32))
    scores, targets = [], []
    for name in ("stage_1_val_seen", "stage_1_val_unseen"):
        fs = bench.splits[name]
        if len(fs) == 0:
            continue
        batch = method.collate(fs, np.arange(len(fs)), None, train=False)
        scores.append(method.class_scores(batch, emb).float())
        targets.append(torch.from_numpy(np.searchsorted(classes, fs.labels)))
    if not scores:
        return 1.0
    s, y = torch.cat(scores), torch.cat(targets)
    nll = [float(torch.nn.functional.cross_entropy(s / float(t), y)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def predict(
    predictor: Predictor,
    videos: Sequence[Path],
    classes: Sequence[str],
    top_k: int = 5,
    batch: int = 16,
    temperature: float | None = None,
) -> list[dict[str, Any]]:
    """Top-k classes per video (``{"video", "top": [{"class", "prob", "score"}]}`` or ``{"video", "error"}``).

    ``temperature`` None: the one fitted when the run was loaded.
    """
    temperature = predictor.temperature if temperature is None else temperature
    emb = predictor.class_matrix(classes)
    names = check_class_names(classes)
    out: list[dict[str, Any]] = []
    for start in range(0, len(videos), batch):
        group, feats = [], []
        for v in videos[start : start + batch]:
            try:
                feats.append(predictor.features(v))
                group.append(v)
            except MediaError as err:
                out.append({"video": str(v), "error": f"{err.reason}" + (f" ({err.detail})" if err.detail else "")})
        if not feats:
            continue
        s = predictor.scores(feats, emb)
        probs = torch.softmax(s / temperature, dim=1)
        k = min(top_k, len(names))
        top = probs.topk(k, dim=1)
        for i, v in enumerate(group):
            out.append({"video": str(v), "top": [
                {"class": names[j], "prob": round(float(p), 4), "score": round(float(s[i, j]), 4)}
                for p, j in zip(top.values[i].tolist(), top.indices[i].tolist())]})
    order = {str(v): i for i, v in enumerate(videos)}
    return sorted(out, key=lambda r: order[r["video"]])
