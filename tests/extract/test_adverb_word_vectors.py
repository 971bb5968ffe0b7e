"""word2vec / fastText / GloVe vectors from local files (thesis Table E.2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lowshot.config.paper import load_paper_config
from lowshot.data.adverbs.text import read_word_vectors
from lowshot.errors import DataError
from lowshot.extract.text import WordVectorTextEncoder
from lowshot.recipes.adverbs import run_adverbs

VECS = {"quickly": [1.0, 0.0], "slowly": [0.0, 1.0], "cut": [1.0, 1.0], "Cut": [9.0, 9.0]}


def _write_text(path: Path, header: bool) -> Path:
    lines = [f"{len(VECS)} 2"] if header else []
    lines += [f"{w} {' '.join(str(x) for x in v)}" for w, v in VECS.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_bin(path: Path) -> Path:
    with open(path, "wb") as fh:
        fh.write(f"{len(VECS)} 2\n".encode())
        for w, v in VECS.items():
            fh.write(w.encode() + b" " + np.asarray(v, dtype="<f4").tobytes() + b"\n")
    return path


@pytest.mark.parametrize("kind", ["glove_txt", "fasttext_vec", "word2vec_bin"])
def test_word_vector_formats_average_words(kind: str, tmp_path: Path) -> None:
    path = {
        "glove_txt": lambda: _write_text(tmp_path / "v.txt", header=False),
        "fasttext_vec": lambda: _write_text(tmp_path / "v.vec", header=True),
        "word2vec_bin": lambda: _write_bin(tmp_path / "v.bin"),
    }[kind]()
    enc = WordVectorTextEncoder(path)
    assert enc.dim == 2
    got = enc.encode(["quickly cut", "slowly", "Cut"])  # "Cut" is looked up lower-cased
    torch.testing.assert_close(got, torch.tensor([[1.0, 0.5], [0.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(DataError, match="no vector for any word of 'zzz'"):
        enc.encode(["zzz"])


def test_word_vector_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="word-vector file not found: .*missing.bin"):
        WordVectorTextEncoder(tmp_path / "missing.bin")
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2\nb 1\n")
    with pytest.raises(DataError, match=r"bad.txt:2: 1 values, expected 2"):
        read_word_vectors(bad, {"zz"})


def test_table_e2_setting_names_its_missing_file(synth_root: Path, tmp_path: Path) -> None:
    cfg = load_paper_config("regada.vatex_unseen_word2vec")
    cfg["data"] |= {"trust_pickle": True, "video_dim": 16, "joint_dim": 8}
    with pytest.raises(DataError, match="GoogleNews-vectors-negative300.bin"):
        run_adverbs(cfg, tmp_path / "w2v", synth_root)


@pytest.mark.usefixtures("one_thread")
def test_regada_trains_on_local_word_vectors(synth_root: Path, tmp_path: Path) -> None:
    from lowshot.protocols.adverbs import load_adverb_data

    vocab = load_adverb_data(synth_root, "vatex", unseen=True).vocab
    rng = np.random.default_rng(0)
    path = tmp_path / "glove.6B.300d.txt"
    words = sorted({w for t in vocab.adverbs + vocab.actions for w in t.lower().split()})
    path.write_text("".join(f"{w} {' '.join(f'{x:.4f}' for x in rng.normal(size=6))}\n" for w in words))
    cfg = load_paper_config("regada.vatex_unseen_glove")
    cfg["data"] |= {"trust_pickle": True, "video_dim": 16, "joint_dim": 8}
    cfg["text"]["vectors"] = str(path)
    cfg["model"] |= {"emb_dim": 8, "heads": 2}
    cfg["train"] = {"epochs": 1, "batch_size": 32, "lr": 1e-3, "eval_interval": 1, "seeds": [0]}
    cfg["protocol"] = {"selection": "last"}
    res = run_adverbs(cfg, tmp_path / "glove", synth_root)
    assert set(res.means()) == {"acc_a_cls"}
