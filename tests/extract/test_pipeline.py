"""`lowshot extract`: stage tree -> released layouts / safe format read back by the GZSL loader;
resumable, bad videos reported and skipped, never a half-written output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV (extra 'extract') is not installed")

from lowshot.cli.main import main
from lowshot.data.av.gzsl import load_gzsl_benchmark
from lowshot.errors import DataError
from lowshot.extract import pipeline
from lowshot.extract.c3d import C3DEncoder
from lowshot.extract.labels import class_embeddings, fit_slot
from lowshot.extract.vggish import VGGishEncoder

pytestmark = pytest.mark.usefixtures("one_thread")


def _args(stage_tree: Path, out: Path, ckpts: dict[str, Path], *extra: str) -> list[str]:
    return ["extract", str(stage_tree), str(out), "--audio", "av.vggish", "--audio-weights", str(ckpts["vggish"]),
            "--video", "av.c3d", "--video-weights", str(ckpts["c3d"]), "--text", "fasttext=hash", "--no-progress", *extra]


@pytest.mark.parametrize("layout", ["averaged", "temporal"])
def test_released_layouts_load_unchanged(layout: str, stage_tree: Path, tiny_ckpts: dict[str, Path],
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "root"
    assert main(_args(stage_tree, out, tiny_ckpts, "--layout", layout)) == 0
    summary = json.loads((out / pipeline.SUMMARY).read_text())
    reasons = sorted(s["reason"] for s in summary["skipped"])
    assert summary["videos"] == 12 and summary["extracted"] == 9
    assert reasons == ["no_audio", "unreadable", "unreadable"]
    feature_dir = pipeline.DEFAULT_DIRS[layout]
    bench = load_gzsl_benchmark(out, "UCF", feature_dir, "cls", text=("fasttext",))
    train = bench.splits["stage_1_train"]
    assert len(train) == 2 and train.dims == (128, 4096)
    assert bench.class_embeddings.shape == (4, 300)
    assert train.temporal == (layout == "temporal")
    assert "features:" in capsys.readouterr().out
    if layout == "averaged":  # `lowshot reproduce` reads the extracted tree unchanged
        assert main(["reproduce", "avca.ucf_cls", "--run-dir", str(tmp_path / "run"), "--data-root", str(out),
                     "train.epochs=1", "train.n_batches=2", "train.batch_size=4", "train.progress=false",
                     "model.encoder_hidden=16", "model.decoder_hidden=16"]) == 0
        assert (tmp_path / "run/result.json").is_file()


def test_safe_format_and_resume_after_kill(stage_tree: Path, tiny_ckpts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "root"
    encs = {"audio": VGGishEncoder(tiny_ckpts["vggish"]), "video": C3DEncoder(tiny_ckpts["c3d"])}
    items = pipeline.scan_stage_tree(stage_tree)
    cache = out / ".cache"
    seen: list[str] = []

    def kill_after_three(item: pipeline.VideoItem) -> None:
        seen.append(item.vid)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.extract_all(items, encs, cache, progress=False, on_video=kill_after_three)
    assert len(list(cache.glob("*.npz"))) == 3 and not list(cache.glob(".*"))  # no half-written file
    again: list[str] = []
    ext = pipeline.extract_all(items, encs, cache, progress=False, on_video=lambda i: again.append(i.vid))
    assert len(again) == len(items) - 3 and not set(again) & set(seen)  # resumed, nothing redone
    assert len(ext.features) == 9
    names = ["alpha", "beta", "delta", "gamma"]
    text = {"clip": fit_slot(class_embeddings(names, "hash", dim=16), "clip")}
    final = pipeline.write_output(out, "UCF", "mine", "temporal", True, items, ext, encs, {"test": 1}, text)
    assert (final / "text/word_embeddings_ucf_normed.safetensors").is_file()
    bench = load_gzsl_benchmark(out, "UCF", final.name, "main", text=("clip",))
    a = bench.splits["stage_2_test_unseen"]
    assert len(a) == 1 and a.temporal
    direct = encs["audio"].encode(__import__("lowshot.extract.media", fromlist=["x"]).decode_audio(
        stage_tree / "stage_2_test_unseen/delta/v0.mp4", 16000))
    assert np.allclose(np.asarray(a.audio[0]), direct, atol=1e-5)


def test_errors_are_clear(stage_tree: Path, tiny_ckpts: dict[str, Path], tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    # EfficientNet dims cannot go into the released cls layout
    with pytest.raises(DataError, match="--safe"):
        pipeline.check_family("averaged", "cls_features", VGGishEncoder(tiny_ckpts["vggish"]),
                              type("E", (), {"dim": 1280, "kind": "effnet_frames", "modality": "video"})())
    bad = tmp_path / "in"
    (bad / "train").mkdir(parents=True)
    assert main(["extract", str(bad), str(tmp_path / "o"), "--no-progress"]) == 2
    assert "expected stage folders" in capsys.readouterr().err
    assert main(_args(stage_tree, tmp_path / "o", tiny_ckpts, "--text", "fasttext")) == 2
    assert "KIND=ENCODER" in capsys.readouterr().err
    assert main(_args(stage_tree, tmp_path / "o", tiny_ckpts, "--shard-size", "0")) == 2
    assert "--shard-size must be at least 1" in capsys.readouterr().err


def test_vector_layout_and_atomic_assembly(stage_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = pipeline.scan_stage_tree(stage_tree)
    rng = np.random.default_rng(0)
    ext = pipeline.Extraction({i.key: {"audio": rng.standard_normal((3, 1024)).astype(np.float32),
                                       "video": rng.standard_normal((1, 512)).astype(np.float32)} for i in items})
    encs = {"audio": type("A", (), {"kind": "clap", "dim": 1024, "step": None})(),
            "video": type("V", (), {"kind": "clip", "dim": 512, "step": None})()}
    names = sorted({i.label for i in items})
    text = {k: fit_slot(class_embeddings(names, "hash", dim=d), k) for k, d in (("clip", 512), ("clap", 1024))}
    out = tmp_path / "root"
    final = pipeline.write_output(out, "UCF", "cls_features_non_averaged", "vector", False, items, ext, encs, {}, text)
    bench = load_gzsl_benchmark(out, "UCF", final.name, "cls", text=("clip", "clap"))
    key = next(i.key for i in items if i.stage == "stage_2_test_unseen")
    assert np.allclose(bench.splits["stage_2_test_unseen"].audio[0], ext.features[key]["audio"].mean(0))
    # a failure while assembling leaves the previous output as it was and no temporary folder
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def boom(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "write_pickle_class_file", boom)
    with pytest.raises(OSError):
        pipeline.write_output(out, "UCF", "cls_features_non_averaged", "vector", False, items, ext, encs, {}, text)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_two_workers_give_the_same_features(stage_tree: Path, tiny_ckpts: dict[str, Path], tmp_path: Path) -> None:
    import functools

    from lowshot.extract.av import build_encoders

    spec = {"audio": ("av.vggish", str(tiny_ckpts["vggish"])), "video": ("av.c3d", str(tiny_ckpts["c3d"]))}
    encs = build_encoders(spec)
    items = pipeline.scan_stage_tree(stage_tree)
    one = pipeline.extract_all(items, encs, tmp_path / "c1", progress=False)
    two = pipeline.extract_all(items, encs, tmp_path / "c2", progress=False, workers=2,
                               build=functools.partial(build_encoders, spec))
    assert sorted(one.features) == sorted(two.features) and len(two.skipped) == 3
    for k, f in one.features.items():
        for m in ("audio", "video"):
            assert np.allclose(f[m], two.features[k][m], atol=1e-5)


def test_cache_key_follows_the_weights(tiny_ckpts: dict[str, Path], tmp_path: Path) -> None:
    encs = {"audio": VGGishEncoder(tiny_ckpts["vggish"]), "video": C3DEncoder(tiny_ckpts["c3d"])}
    spec = {"audio": ("av.vggish", str(tiny_ckpts["vggish"])), "video": ("av.c3d", str(tiny_ckpts["c3d"]))}
    copy = tmp_path / "other.safetensors"
    copy.write_bytes(tiny_ckpts["vggish"].read_bytes())
    other = {**spec, "audio": ("av.vggish", str(copy))}
    assert pipeline.cache_key(spec, encs) == pipeline.cache_key(dict(spec), encs)
    assert pipeline.cache_key(spec, encs) != pipeline.cache_key(other, encs)  # other weights: no stale cache
