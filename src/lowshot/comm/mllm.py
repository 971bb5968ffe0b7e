"""MLLM speakers and listeners on Hugging Face transformers (LLaVA, Qwen2-VL, PaliGemma).

Citation: thesis ch. 7 and app. F.2 (prompts quoted below). What differs from published
code (none exists): the LLaVA single-image composition (two images side by side with a
white bar, 8 px at the image's height) and the PaliGemma prompt without quotes
(``segment <m>``) are project choices; Qwen2-VL inputs are built without its processor
(which needs torchvision in transformers 5.x): the PIL image processor plus manual
``<|image_pad|>`` expansion. Models load from a local directory or the local HF cache only,
never from the network; a missing model raises :class:`~lowshot.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lowshot.comm.agents import FAMILIES, AgentFamily
from lowshot.comm.episodes import REIEpisode, RESEpisode
from lowshot.comm.perception import side_by_side
from lowshot.errors import ConfigError

# ---------------------------------------------------------------- prompts (app. F.2)
REI_SPEAKER = ("Write a description for the {side} image, such that it can be differentiated from the "
               "{other} image, but do not talk about the {other} image. Do not name which image you "
               "are describing.")
REI_LISTENER_LEFTRIGHT = ("Does this sentence: '{message}' describe the left image or the right image? "
                          "Do not explain your reasoning.")
REI_LISTENER_PICTURE = "Which image does the sentence '{message}' describe? A. Picture 1 B. Picture 2."
RES_SPEAKER = "Write a short description for the highlighted object."
RES_LISTENER = "segment {message}"



def rei_speaker_prompt(target_side: int) -> str:
    """The REI speaker prompt (app. F.2) for a target on side ``target_side`` (0: left)."""
    side, other = ("left", "right") if target_side == 0 else ("right", "left")
    return REI_SPEAKER.format(side=side, other=other)


class Family(AgentFamily):
    """How one model family turns (images, prompt) pairs into a padded batch."""

    model_backed = True
    model_class = ""
    multi_image = False
    listener_prompt = REI_LISTENER_LEFTRIGHT
    pass_position_ids = True

    def encode(self, processor: Any, images: Sequence[Sequence[Image.Image]],
               prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """A padded model batch of ``prompts``, each with its images (``input_ids`` and
        ``attention_mask`` ``[B, L]``, plus the family's image tensors)."""
        raise NotImplementedError

    def tokenizer(self, processor: Any) -> Any:
        """The tokenizer inside ``processor``."""
        return processor.tokenizer

    def load_processor(self, path: str) -> Any:
        """The family's processor from a local directory (never downloaded)."""
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(path, local_files_only=True)

    def compose(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        """Images as the model receives them (single-image models get one composite)."""
        return list(images) if self.multi_image or len(images) == 1 else [side_by_side(images)]

    def listener(self, agent: Any, path: str, segments: bool) -> MLLMListener:
        """Load the model from ``path`` as an :class:`MLLMListener`; for a segmenting game
        (RES) also ``agent.mask_decoder`` (big_vision's ``vae-oid.npz``) to decode ``<seg>`` tokens."""
        from lowshot.comm.segmentation import MaskDecoder

        decoder = MaskDecoder.from_npz(agent.mask_decoder) if segments else None
        return MLLMListener(load_mllm(self.name, path, agent.device, agent.dtype, agent.max_new_tokens), decoder)


@FAMILIES.register("llava")
class Llava(Family):
    """LLaVA-1.5 style: one image, ``USER: <image>\\n<prompt> ASSISTANT:`` or the chat template."""

    name = "llava"
    model_class = "LlavaForConditionalGeneration"

    def encode(self, processor, images, prompts):
        """Chat template (or ``USER: <image>`` prompt) on one composite image per row,
        left-padded: ``input_ids`` / ``attention_mask`` ``[B, L]``, ``pixel_values``."""
        texts = []
        for p in prompts:
            if getattr(processor, "chat_template", None):
                conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}]
                texts.append(processor.apply_chat_template(conv, add_generation_prompt=True))
            else:
                texts.append(f"USER: <image>\n{p} ASSISTANT:")
        imgs = [self.compose(ims)[0] for ims in images]
        processor.tokenizer.padding_side = "left"
        out = processor(images=imgs, text=texts, return_tensors="pt", padding=True)
        return dict(out)


@FAMILIES.register("qwen2_vl")
class Qwen2VL(Family):
    """Qwen2-VL style: several images ("Picture 1", "Picture 2"), ChatML, multimodal RoPE.

    ``processor`` is a ``(tokenizer, image_processor)`` pair.
    """

    name = "qwen2_vl"
    model_class = "Qwen2VLForConditionalGeneration"
    multi_image = True
    listener_prompt = REI_LISTENER_PICTURE
    pass_position_ids = False

    def tokenizer(self, processor):
        """The tokenizer of the ``(tokenizer, image_processor)`` pair."""
        return processor[0]

    def load_processor(self, path):
        """``(tokenizer, image_processor)`` from a local directory (never downloaded)."""
        from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

        return (AutoTokenizer.from_pretrained(path, local_files_only=True),
                Qwen2VLImageProcessorPil.from_pretrained(path, local_files_only=True))

    def encode(self, processor, images, prompts):
        """ChatML with one ``<|image_pad|>`` per merged patch of each image, left-padded:
        ``input_ids`` / ``attention_mask`` / ``mm_token_type_ids`` ``[B, L]``,
        ``pixel_values`` and ``image_grid_thw`` ``[n_images, 3]``."""
        tok, ip = processor
        flat = [im for ims in images for im in ims]
        vis = ip(images=flat, return_tensors="pt")
        grid = vis["image_grid_thw"]
        merge = getattr(ip, "merge_size", 2)
        k = 0
        texts = []
        for ims, p in zip(images, prompts):
            pads = []
            for _ in ims:
                n = int(grid[k].prod()) // (merge * merge)
                pads.append("<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>")
                k += 1
            texts.append(f"<|im_start|>user\n{''.join(pads)}{p}<|im_end|>\n<|im_start|>assistant\n")
        tok.padding_side = "left"
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        image_id = tok.convert_tokens_to_ids("<|image_pad|>")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "mm_token_type_ids": (enc["input_ids"] == image_id).int(),
                "pixel_values": vis["pixel_values"], "image_grid_thw": grid}


@FAMILIES.register("paligemma")
class PaliGemma(Family):
    """PaliGemma style: one image, task prefix prompts (``segment ...``), ``<loc>``/``<seg>`` outputs."""

    name = "paligemma"
    model_class = "PaliGemmaForConditionalGeneration"

    def encode(self, processor, images, prompts):
        """``<image>prompt`` on one composite image per row, left-padded: ``input_ids`` /
        ``attention_mask`` ``[B, L]``, ``pixel_values`` (no ``labels``)."""
        imgs = [self.compose(ims)[0] for ims in images]
        processor.tokenizer.padding_side = "left"
        texts = [f"<image>{p}" for p in prompts]
        out = dict(processor(text=texts, images=imgs, return_tensors="pt", padding=True))
        out.pop("labels", None)  # only for supervised suffixes; the policy scores completions itself
        return out


@dataclass
class MLLM:
    """A loaded model with its family and processor."""

    family: Family
    model: Any
    processor: Any
    max_new_tokens: int = 32

    @property
    def tokenizer(self) -> Any:
        """The family's tokenizer of this model."""
        return self.family.tokenizer(self.processor)

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.model.parameters()).device

    def encode(self, images: Sequence[Sequence[Image.Image]], prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """A padded batch (``input_ids`` / ``attention_mask`` ``[B, L]`` plus image tensors)
        from :meth:`Family.encode`."""
        return self.family.encode(self.processor, images, prompts)

    @torch.no_grad()
    def generate(self, images: Sequence[Sequence[Image.Image]], prompts: Sequence[str],
                 skip_special_tokens: bool = True) -> list[str]:
        """Greedy answers, one per (images, prompt)."""
        inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                  for k, v in self.encode(images, prompts).items()}
        tok = self.tokenizer
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                  pad_token_id=tok.pad_token_id)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [tok.decode(t, skip_special_tokens=skip_special_tokens).strip() for t in new]


def load_mllm(family: str, path: str | Path, device: str = "auto", dtype: str = "auto",
              max_new_tokens: int = 32) -> MLLM:
    """Load a family's model + processor from a local directory or the local HF cache.

    Raises:
        ConfigError: when the model is not available offline (it is never downloaded).
    """
    import transformers

    from lowshot.utils.seed import resolve_device

    fam = FAMILIES.get(family)()
    cls = getattr(transformers, fam.model_class)
    torch_dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16,
                   "float16": torch.float16}[dtype]
    try:
        model = cls.from_pretrained(str(path), local_files_only=True, dtype=torch_dtype)
        proc = fam.load_processor(str(path))
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{family} model '{path}' is not available offline ({type(err).__name__}). lowshot never "
            "downloads weights: fetch them once (e.g. `huggingface-cli download <id> --local-dir DIR`) "
            "and pass DIR as the model path") from err
    model.to(resolve_device(device)).eval()
    return MLLM(fam, model, proc, max_new_tokens)


class MLLMListener:
    """REI (free-text answer) and RES (PaliGemma ``<loc>`` + ``<seg>`` tokens -> mask) listener.

    Args:
        mllm: the loaded model.
        mask_decoder: PaliGemma's mask VQ-VAE decoder (:mod:`lowshot.comm.segmentation`),
            needed for RES.
    """

    def __init__(self, mllm: MLLM, mask_decoder: Any = None) -> None:
        self.mllm = mllm
        self.mask_decoder = mask_decoder

    def answer(self, images: Sequence[tuple[Image.Image, Image.Image]], messages: Sequence[str]) -> list[str]:
        """REI: the family's listener prompt per message, greedy answers."""
        prompts = [self.mllm.family.listener_prompt.format(message=m) for m in messages]
        return self.mllm.generate([list(p) for p in images], prompts)

    def segment(self, images: Sequence[Image.Image], messages: Sequence[str]) -> list[np.ndarray]:
        """RES: ``segment <message>``, the generated ``<loc>``/``<seg>`` tokens decoded into
        one ``[H, W]`` bool mask per image.

        Raises:
            ConfigError: without a mask decoder."""
        from lowshot.comm.segmentation import DECODER_FILE, decode_segmentations

        if self.mask_decoder is None:
            raise ConfigError(f"a RES listener decodes <seg> tokens with PaliGemma's mask decoder: set "
                              f"listener.mask_decoder to big_vision's {DECODER_FILE}")
        prompts = [RES_LISTENER.format(message=m) for m in messages]
        texts = self.mllm.generate([[im] for im in images], prompts, skip_special_tokens=False)
        return decode_segmentations(texts, [im.size for im in images], self.mask_decoder)


class MLLMSpeaker:
    """Speaker prompts for REI and RES; :meth:`encode_rei` / :meth:`encode_res` feed a
    :class:`~lowshot.comm.policy.SpeakerPolicy`."""

    def __init__(self, mllm: MLLM) -> None:
        self.mllm = mllm

    def encode_rei(self, episodes: Sequence[REIEpisode]) -> dict[str, torch.Tensor]:
        """REI speaker inputs (both images, prompt per target side): ``input_ids`` /
        ``attention_mask`` ``[B, L]`` plus image tensors."""
        return self.mllm.encode([list(e.speaker_images) for e in episodes],
                                [rei_speaker_prompt(e.speaker_target_side) for e in episodes])

    def encode_res(self, episodes: Sequence[RESEpisode]) -> dict[str, torch.Tensor]:
        """RES speaker inputs (circled image, RES prompt): ``input_ids`` / ``attention_mask``
        ``[B, L]`` plus image tensors."""
        return self.mllm.encode([[e.speaker_image] for e in episodes], [RES_SPEAKER] * len(episodes))

    def describe(self, episodes: Sequence[REIEpisode]) -> list[str]:
        """REI: greedy descriptions of each episode's target."""
        return self.mllm.generate([list(e.speaker_images) for e in episodes],
                                  [rei_speaker_prompt(e.speaker_target_side) for e in episodes])

    def describe_object(self, episodes: Sequence[RESEpisode]) -> list[str]:
        """RES: greedy descriptions of each episode's circled object."""
        return self.mllm.generate([[e.speaker_image] for e in episodes], [RES_SPEAKER] * len(episodes))
