"""Word-level tokenizers and tiny randomly initialised models built from configs.

Nothing here downloads anything: tokenizers are built from a word list, models from
configs (random init). Used by the offline world (tiny speaker LM), by tests and
benchmarks (shape-faithful tiny LLaVA / Qwen2-VL / PaliGemma).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SPECIAL = ("<pad>", "<unk>", "<bos>", "<eos>")


def word_tokenizer(words: Sequence[str], extra_special: Sequence[str] = ()) -> Any:
    """A ``PreTrainedTokenizerFast`` over whitespace-split ``words`` (left padding).

    Args:
        words: the vocabulary (duplicates and specials are dropped).
        extra_special: additional special tokens (``<image>``, ``<|image_pad|>``, ...).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for w in list(SPECIAL) + list(extra_special) + list(words):
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>",
                                  bos_token="<bos>", eos_token="<eos>", padding_side="left")
    if extra_special:
        tok.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return tok


def tiny_causal_lm(vocab_size: int, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                   intermediate_size: int = 128, pad_token_id: int = 0, bos_token_id: int = 2,
                   eos_token_id: int = 3) -> Any:
    """A random-init ``LlamaForCausalLM`` of the given size."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                      num_hidden_layers=num_layers, num_attention_heads=num_heads,
                      num_key_value_heads=num_heads, max_position_embeddings=256,
                      pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg)


def _text_kwargs(tok: Any) -> dict[str, Any]:
    return dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=4, pad_token_id=tok.pad_token_id,
                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                max_position_embeddings=512)


def tiny_llava(words: Sequence[str], image_size: int = 32) -> tuple[Any, Any]:
    """Tiny LLaVA (CLIP vision tower + Llama) and its ``LlavaProcessor``."""
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = word_tokenizer(words, extra_special=("<image>",))
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=image_size, patch_size=8),
        text_config=LlamaConfig(**_text_kwargs(tok)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(cfg)
    ip = CLIPImageProcessorPil(size={"shortest_edge": image_size},
                            crop_size={"height": image_size, "width": image_size})
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=8,
                          vision_feature_select_strategy="default", image_token="<image>",
                          num_additional_image_tokens=1)
    return model, proc


def tiny_paligemma(words: Sequence[str], image_size: int = 32) -> tuple[Any, Any]:
    """Tiny PaliGemma (SigLIP + Gemma) with ``<locNNNN>`` and ``<segNNN>`` tokens, and its processor."""
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessorPil,
        SiglipVisionConfig,
    )

    from lowshot.comm.segmentation import seg_tokens

    locs = [f"<loc{i:04d}>" for i in range(1024)]
    tok = word_tokenizer(list(words) + locs + seg_tokens(), extra_special=("<image>",))
    n_img = (image_size // 8) ** 2
    tk = _text_kwargs(tok)
    tk.update(num_key_value_heads=1, head_dim=16)
    cfg = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, image_size=image_size, patch_size=8,
                                         projection_dim=64),
        text_config=GemmaConfig(**tk), image_token_index=tok.convert_tokens_to_ids("<image>"),
        projection_dim=64)
    model = PaliGemmaForConditionalGeneration(cfg)
    ip = SiglipImageProcessorPil(size={"height": image_size, "width": image_size})
    ip.image_seq_length = n_img
    proc = PaliGemmaProcessor(image_processor=ip, tokenizer=tok)
    return model, proc


QWEN_SPECIAL = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                "<|video_pad|>")


def tiny_qwen2_vl(words: Sequence[str]) -> tuple[Any, Any]:
    """Tiny Qwen2-VL and a ``(tokenizer, Qwen2VLImageProcessorPil)`` pair (no torchvision)."""
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    tok = word_tokenizer(list(words) + ["user", "assistant"], extra_special=QWEN_SPECIAL)
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    text = _text_kwargs(tok)
    text["rope_parameters"] = {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1e4}
    cfg = Qwen2VLConfig(
        text_config=text,
        vision_config=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    model = Qwen2VLForConditionalGeneration(cfg)
    ip = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56, patch_size=14, merge_size=2,
                                  temporal_patch_size=2)
    return model, (tok, ip)
