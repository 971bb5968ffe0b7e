"""Class-label embeddings (thesis app. D): prompt ensembles and word-vector averages.

* :func:`prompt_ensemble`: every prompt template filled with the class name, encoded, each
  embedding L2-normalised, averaged over the templates, L2-normalised again (CLIP's recipe,
  thesis app. D.1). Templates: :data:`PROMPTS` (listings D.1-D.4, plus the bare name for MiniLM).
* :func:`word_average`: mean of the word vectors of the words of a class name, from a
  fastText ``.vec`` / GloVe ``.txt`` / word2vec text file (optional ``N D`` header line).
* :func:`check_class_names`: duplicate or empty class names are a :class:`DataError`.

The result is a ``{class name: float32[D]}`` dict, written with
:func:`lowshot.data.av.embeddings.write_embedding_dict` (released pickled ``.npy`` or
``.safetensors``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from lowshot._registry import ENCODERS
from lowshot.errors import DataError

_UCF_VERBS = ("", "using ", "doing ", "during ", "performing ", "practicing ")
_CLAP_UCF = [
    "a person {} can be heard.", "a example of a person {} can be heard.", "a demonstration of a person {} can be heard.",
    "the person {} can be heard.", "a example of the person {} can be heard.", "a demonstration of the person {} can be heard.",
    "a person using {} can be heard.", "a example of a person using {} can be heard.",
    "a demonstration of a person using {} can be heard.", "a example of the person using {} can be heard.",
    "a demonstration of the person using {} can be heard.", "a person doing {} can be heard.",
    "a example of a person doing {} can be heard.", "a demonstration of a person doing {} can be heard.",
    "a example of the person doing {} can be heard.", "a demonstration of the person doing {} can be heard.",
    "a example of a person during {} can be heard.", "a demonstration of a person during {} can be heard.",
    "a example of the person during {} can be heard.", "a demonstration of the person during {} can be heard.",
    "a person performing {} can be heard.", "a example of a person performing {} can be heard.",
    "a demonstration of a person performing {} can be heard.", "a example of the person performing {} can be heard.",
    "a demonstration of the person performing {} can be heard.", "a person practicing {} can be heard.",
    "a example of a person practicing {} can be heard.", "a demonstration of a person practicing {} can be heard.",
    "a example of the person practicing {} can be heard.", "a demonstration of the person practicing {} can be heard.",
]

#: template sets: ``clip_actions`` (D.1, UCF/ActivityNet, 48), ``clip_vggsound`` (D.2),
#: ``clap_actions`` (D.3), ``clap_vggsound`` (D.4), ``name`` (the bare class name)
PROMPTS: dict[str, tuple[str, ...]] = {
    "clip_actions": tuple(
        f"a {noun} of {art} person {verb}{{}}."
        for verb in _UCF_VERBS for art in ("a", "the") for noun in ("photo", "video", "example", "demonstration")
    ),
    "clip_vggsound": (
        "a photo of {}.", "a video of {}.", "a example of {}.", "a demonstration of {}.",
        "a photo of the person {}.", "a video of the {}.", "a example of the {}.", "a demonstration of the {}.",
    ),
    "clap_actions": tuple(_CLAP_UCF),
    "clap_vggsound": (
        "a {} can be heard.", "a example of a {} can be heard.", "a demonstration of a {} can be heard.",
        "the {} can be heard.", "a example of the {} can be heard.", "a demonstration of the {} can be heard.",
        "{} can be heard.", "a example of {} can be heard.", "a demonstration of {} can be heard.",
    ),
    "name": ("{}",),
}

#: short text-encoder names -> ENCODERS entries (MiniLM / GloVe / hash are shared with the adverbs)
TEXT_ENCODERS = {
    "minilm": "adverbs.minilm", "glove": "adverbs.glove", "hash": "adverbs.hash",
    "clip": "text.clip", "clap": "text.clap",
}


def check_class_names(names: Iterable[str], where: str = "class list") -> list[str]:
    """Stripped names; DataError for an empty name or a duplicate (case-insensitive)."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(names):
        name = str(raw).strip()
        if not name:
            raise DataError(f"{where}: class name {i + 1} is empty")
        key = name.lower()
        if key in seen:
            raise DataError(f"{where}: duplicate class name '{name}' (entries {seen[key] + 1} and {i + 1})")
        seen[key] = i
        out.append(name)
    if not out:
        raise DataError(f"{where}: no class names")
    return out


def parse_class_list(text: str, where: str = "--classes") -> list[str]:
    """Comma- or newline-separated class names -> checked names."""
    return check_class_names(re.split(r"[,\n]", text.strip()), where)


def text_encoder(name: str, **kwargs: object) -> object:
    """A text encoder by short name (``minilm``, ``glove``, ``clip``, ``clap``, ``hash``) or ENCODERS name."""
    import lowshot.extract.av  # noqa: F401  (registers the encoders)

    return ENCODERS.get(TEXT_ENCODERS.get(name, name))(**kwargs)


def readable(name: str) -> str:
    """Class folder name -> words: ``PlayingGuitar`` / ``playing_guitar`` -> ``playing guitar``."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name.replace("_", " ").replace("-", " "))
    return re.sub(r"\s+", " ", name).strip().lower()


def prompt_ensemble(encoder: object, names: Sequence[str], prompts: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-prompt L2-normalise, mean over prompts, L2-normalise (app. D).

    Args:
        encoder: has ``encode(list[str]) -> [N, D]``.
        names: checked class names (keys of the result); filled in as :func:`readable` words.
        prompts: templates with one ``{}``.

    Returns:
        name -> ``[D]`` unit float32 vector.
    """
    names = check_class_names(names)
    acc: torch.Tensor | None = None
    for template in prompts:
        emb = torch.nn.functional.normalize(encoder.encode([template.format(readable(n)) for n in names]).float(), dim=-1)  # type: ignore[attr-defined]
        acc = emb if acc is None else acc + emb
    assert acc is not None, "no prompts"
    out = torch.nn.functional.normalize(acc / len(prompts), dim=-1).numpy()
    return {n: out[i].astype(np.float32) for i, n in enumerate(names)}


def read_word_vectors(path: str | Path, vocab: set[str] | None = None) -> dict[str, np.ndarray]:
    """A fastText ``.vec`` / GloVe ``.txt`` / word2vec text file -> word -> vector.

    Args:
        path: the file (an ``N D`` header line is skipped).
        vocab: keep only these (lower-case) words, to stay small.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing word-vector file {path}")
    out: dict[str, np.ndarray] = {}
    dim = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh):
            parts = line.rstrip().split(" ")
            if n == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if len(parts) < 2:
                continue
            word = parts[0].lower()
            if vocab is not None and word not in vocab:
                continue
            try:
                vec = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path}:{n + 1}: not a word-vector line") from None
            if dim is None:
                dim = len(vec)
            elif len(vec) != dim:
                raise DataError(f"{path}:{n + 1}: {len(vec)} values, earlier lines have {dim}")
            out.setdefault(word, vec)
    return out


def word_average(names: Sequence[str], vectors: str | Path | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Class name -> mean of its words' vectors (words of :func:`readable`).

    Raises:
        DataError: duplicate/empty names, or a name none of whose words has a vector.
    """
    names = check_class_names(names)
    words = {n: readable(n).split() for n in names}
    if not isinstance(vectors, dict):
        vectors = read_word_vectors(vectors, {w for ws in words.values() for w in ws})
    out: dict[str, np.ndarray] = {}
    for n in names:
        rows = [vectors[w] for w in words[n] if w in vectors]
        if not rows:
            raise DataError(f"no word vector for any word of class '{n}'")
        out[n] = np.mean(rows, axis=0).astype(np.float32)
    return out


def default_prompts(kind: str, dataset: str) -> str:
    """App. D template set of a text slot: CLIP/CLAP slots use listings D.1-D.4, fastText the bare name."""
    if kind in ("clip", "clap"):
        return f"{kind}_{'vggsound' if dataset.lower() == 'vggsound' else 'actions'}"
    return "name"


def class_embeddings(
    names: Sequence[str],
    encoder: str | None = None,
    prompts: str = "name",
    model_dir: str | Path | None = None,
    word_vectors: str | Path | None = None,
    dim: int | None = None,
) -> dict[str, np.ndarray]:
    """Class name -> embedding: word-vector average (``word_vectors``) or a prompt ensemble.

    Args:
        names: class names.
        encoder: text encoder short name (``minilm``, ``glove``, ``clip``, ``clap``, ``hash``).
        prompts: a :data:`PROMPTS` key.
        model_dir: local model directory for ``clip`` / ``clap``.
        word_vectors: a fastText/GloVe/word2vec text file (then ``encoder`` is ignored).
        dim: output size of the ``hash`` encoder (others have their own).
    """
    if word_vectors is not None:
        return word_average(names, word_vectors)
    if prompts not in PROMPTS:
        raise DataError(f"unknown prompt set '{prompts}'; known: {', '.join(PROMPTS)}")
    kwargs: dict[str, object] = {"model_dir": model_dir} if encoder in ("clip", "clap", "text.clip", "text.clap") else {}
    if encoder in ("hash", "adverbs.hash") and dim is not None:
        kwargs["dim"] = dim
    return prompt_ensemble(text_encoder(encoder or "minilm", **kwargs), names, PROMPTS[prompts])


def fit_slot(table: dict[str, np.ndarray], kind: str) -> dict[str, np.ndarray]:
    """Zero-pad vectors to the dimension of a released text slot (fastText 300, CLIP 512, CLAP 1024).

    Zero-padding keeps every dot product and norm, so e.g. MiniLM-384 in the CLIP slot or
    GloVe-50 in the fastText slot score exactly as unpadded; longer vectors are a DataError.
    """
    from lowshot.data.av.datasets import TEXT_KINDS

    want = TEXT_KINDS[kind][0]
    dim = len(next(iter(table.values())))
    if dim > want:
        raise DataError(f"{dim}-d class embeddings do not fit the {kind} slot ({want}-d); choose another --text KIND")
    return {k: np.pad(v, (0, want - dim)).astype(np.float32) for k, v in table.items()}
