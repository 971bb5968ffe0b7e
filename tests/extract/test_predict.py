"""`lowshot predict`: a run trained on extracted features names new videos among free-text classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("av", reason="PyAV (extra 'extract') is not installed")
import torch

from lowshot.cli.main import main
from lowshot.cli.predict import load_predictor
from lowshot.config.paper import load_paper_config
from lowshot.errors import DataError
from lowshot.extract import predict as predict_mod
from lowshot.extract.base import save_checkpoint
from lowshot.extract.vggish import VGGish, VGGishEncoder
from lowshot.recipes.gzsl import run_gzsl

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(stage_tree: Path, tiny_ckpts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pred")
    assert main(["extract", str(stage_tree), str(out / "data"), "--audio", "av.vggish", "--audio-weights",
                 str(tiny_ckpts["vggish"]), "--video", "av.c3d", "--video-weights", str(tiny_ckpts["c3d"]),
                 "--safe", "--layout", "vector", "--feature-dir", "mine", "--text", "clip=hash", "--no-progress"]) == 0
    config = load_paper_config("clipclap.ucf", [
        f"data.root={out / 'data'}", "data.feature_dir=mine", "data.text=[clip]", "train.epochs=1",
        "train.n_batches=2", "train.batch_size=4", "train.seeds=[0]", "train.progress=false"])
    run_gzsl(config, out / "run")
    return out


def test_predict_table_json_and_skips(trained: Path, stage_tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    videos = [str(stage_tree / "stage_2_test_unseen"), str(stage_tree / "stage_1_train/alpha")]
    out_json = trained / "pred.json"
    assert main(["predict", *videos, "--run", str(trained / "run"), "--classes", "alpha, beta, gamma, delta, epsilon",
                 "--top-k", "3", "--batch", "2", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "1. " in text and "skipped: unreadable" in text and "skipped: no_audio" in text
    res = json.loads(out_json.read_text())
    assert len(res) == 5  # delta/v0, alpha/{broken, empty, silent, v0}
    ok = [r for r in res if "top" in r]
    assert len(ok) == 2 and all(len(r["top"]) == 3 for r in ok)
    for r in ok:
        probs = [t["prob"] for t in r["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_predict_bad_input(trained: Path, stage_tree: Path, tiny_ckpts: dict[str, Path], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    video = str(stage_tree / "stage_2_test_unseen/delta/v0.mp4")
    assert main(["predict", video, "--run", str(trained / "run"), "--classes", "a, b, A"]) == 2
    assert "duplicate class name 'A'" in capsys.readouterr().err
    assert main(["predict", video, "--run", str(trained / "run")]) == 2
    assert "--classes" in capsys.readouterr().err
    # an audio encoder of 64-d output where the checkpoint takes 128-d audio features
    torch.manual_seed(0)
    other = VGGishEncoder(save_checkpoint(VGGish((4, 4, 8, 8), 16, 64), tmp_path / "v64.safetensors"))
    real = predict_mod.build_encoder
    monkeypatch.setattr(predict_mod, "build_encoder", lambda n, w, m: other if m == "audio" else real(n, w, m))
    with pytest.raises(DataError, match="checkpoint takes 128-d audio features, but the encoder av.vggish gives 64-d"):
        load_predictor(trained / "run")


def test_fit_temperature_recovers_a_known_temperature() -> None:
    from types import SimpleNamespace

    import numpy as np

    from lowshot.data.av.featureset import FeatureSet
    from lowshot.extract.predict import fit_temperature

    rng = np.random.default_rng(0)
    n, c = 4000, 4
    z = (3 * rng.standard_normal((n, c))).astype(np.float32)
    p = np.exp(z / 0.5 - (z / 0.5).max(1, keepdims=True))
    y = np.array([rng.choice(c, p=row / row.sum()) for row in p])

    class ScoresAsFeatures:  # collate returns the rows; class_scores returns them as scores
        def collate(self, fs, idx, targets, train):  # noqa: ANN001, ANN201
            return torch.from_numpy(np.asarray(fs.audio)[idx])

        def class_scores(self, batch, emb):  # noqa: ANN001, ANN201
            return batch

    half = n // 2
    splits = {name: FeatureSet(z[s], z[s], y[s], np.array([str(i) for i in range(len(y[s]))]))
              for name, s in (("stage_1_val_seen", slice(0, half)), ("stage_1_val_unseen", slice(half, n)))}
    bench = SimpleNamespace(splits=splits, class_embeddings=np.eye(c, dtype=np.float32),
                            split_classes={"stage_1_train": np.arange(2), "stage_1_val_seen": np.arange(2),
                                           "stage_1_val_unseen": np.arange(2, 4)})
    t = fit_temperature(ScoresAsFeatures(), bench)
    assert 0.4 <= t <= 0.63  # the grid point next to the true 0.5 (steps of x1.26)
