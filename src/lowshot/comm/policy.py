"""A trainable speaker: a causal (M)LLM with one LoRA adapter per listener and a value head.

Citation: thesis §7.3.1 / Fig. 7.2 (LoRA on all linear layers of the LLM, vision frozen,
one adapter set per listener). What differs from published code (none exists): the
reference policy pi_0 is the same model with its adapter disabled (LoRA B starts at 0), so
no second copy is held; the NLPO mask policy is a *snapshot adapter* (a copied LoRA state
under another adapter name), not a deep copy of the model; sampling is our own token loop
(not ``generate``), so that NLPO can apply the top-p mask of another adapter at every step
and text LMs and MLLMs share one code path. It keeps a KV cache per adapter (the prompt
with its images is encoded once, then each step feeds one token; ``SamplingConfig.use_cache``,
on by default, gives the same tokens as re-running the whole sequence every step). Optional
bf16 autocast and gradient checkpointing (:class:`ComputeConfig`) are for large speakers.

Shapes: ``B`` episodes, ``P`` prompt tokens (left-padded), ``T`` completion tokens
(right-padded), ``V`` vocabulary, ``H`` hidden size.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from lowshot.losses.policy import masked_token_logprobs, nucleus_mask

#: LoRA targets: the LLM's linear layers only (vision tower, projector and lm_head excluded)
LLM_LINEAR_REGEX = (
    r"^(?!.*(vision|visual|multi_modal_projector|mm_projector)).*"
    r"\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"
)


@dataclass(frozen=True)
class LoraSpec:
    """LoRA hyperparameters (paper grid: r in {32, 64, 128}, alpha in {64 ... 2048})."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: str = LLM_LINEAR_REGEX


@dataclass(frozen=True)
class SamplingConfig:
    """Generation settings (not given in the thesis; project choices).

    ``use_cache``: keep the keys/values of the prompt and of the tokens generated so far, so
    that each step runs one token through the model (false: re-run the whole sequence each
    step; same tokens, for checking)."""

    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    do_sample: bool = True
    use_cache: bool = True


@dataclass(frozen=True)
class ComputeConfig:
    """How a (large) speaker runs: ``precision`` ``float32`` or ``bfloat16`` (autocast of
    every forward pass; LoRA weights and the optimiser stay float32) and
    ``gradient_checkpointing`` (recompute activations in the backward pass: less memory, one
    more forward per update; same gradients)."""

    precision: str = "float32"
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"compute.precision must be float32 or bfloat16, got {self.precision!r}")


@dataclass
class Rollout:
    """Sampled completions with the prompt inputs that produced them.

    Attributes:
        inputs: model inputs of the prompts; ``input_ids``/``attention_mask`` ``[B, P]``
            plus model extras (``pixel_values``, ``image_grid_thw``, ...).
        tokens: ``[B, T]`` completion ids (pad after EOS).
        mask: ``[B, T]`` float, 1 on generated tokens (EOS included).
        texts: decoded completions.
        action_masks: ``[B, T, V]`` bool NLPO masks used while sampling, or None.
        logprobs: ``[B, T]`` sampling-time log-probs of the tokens under the distribution
            they were drawn from (eval mode, after temperature, top-p and the NLPO mask);
            PPO's "old" policy. 0 on padding.
        full_logprobs: ``[B, T]`` sampling-time log-probs under the whole vocabulary
            (no NLPO mask; temperature 1): the operand of the KL penalty. 0 on padding.
    """

    inputs: dict[str, Tensor]
    tokens: Tensor
    mask: Tensor
    texts: list[str]
    action_masks: Tensor | None = None
    logprobs: Tensor | None = None
    full_logprobs: Tensor | None = None

    def shifted(self, shift: int = 1) -> Rollout:
        """Completions rolled by ``shift`` against the prompts (KTO's mismatched pairs).

        The sampling-time log-probs belong to the original pairs and are dropped.
        """
        am = None if self.action_masks is None else self.action_masks.roll(shift, 0)
        return replace(self, tokens=self.tokens.roll(shift, 0), mask=self.mask.roll(shift, 0),
                       texts=self.texts[-shift:] + self.texts[:-shift], action_masks=am,
                       logprobs=None, full_logprobs=None)


class SpeakerPolicy(nn.Module):
    """Causal LM (text or multimodal) + LoRA adapters + value heads.

    Args:
        model: a transformers causal LM or ``*ForConditionalGeneration`` MLLM.
        tokenizer: its tokenizer (needs ``eos_token_id`` and ``pad_token_id``).
        encode: episodes -> prompt inputs (``input_ids``, ``attention_mask``, extras),
            left-padded, on CPU.
        lora: LoRA spec; ``None`` trains no adapter (full model; then pi_0 is unavailable).
        pass_position_ids: pass position ids computed from the attention mask (so left
            padding does not shift positions); off for models that compute their own
            (Qwen2-VL's multimodal RoPE).
        compute: bf16 autocast and gradient checkpointing.
    """

    def __init__(self, model: nn.Module, tokenizer: Any,
                 encode: Callable[[Sequence[Any]], dict[str, Tensor]],
                 lora: LoraSpec | None = LoraSpec(), pass_position_ids: bool = True,
                 compute: ComputeConfig | None = None) -> None:
        super().__init__()
        self.base = model
        self.model: nn.Module = model
        self.tokenizer = tokenizer
        self.encode = encode
        self.lora = lora
        self.pass_position_ids = pass_position_ids
        self.value_heads = nn.ModuleDict()
        self.adapter: str | None = None
        for p in model.parameters():
            p.requires_grad_(lora is None)
        hidden = model.config.get_text_config().hidden_size
        self._hidden = hidden
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)
        # special tokens other than EOS (image placeholders, pad, bos) are never generated
        banned = sorted(set(getattr(tokenizer, "all_special_ids", [])) - {self.eos_id})
        self.register_buffer("banned_ids", torch.tensor(banned, dtype=torch.long), persistent=False)
        self.compute = compute = compute or ComputeConfig()
        if compute.gradient_checkpointing:
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is not None:
                enable({"use_reentrant": False})
            else:  # transformers < 5.x
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._logits_to_keep = "logits_to_keep" in params

    # ------------------------------------------------------------------ adapters
    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.model.parameters()).device

    def add_adapter(self, name: str) -> None:
        """Create the adapter (and value head) of listener ``name`` and make it active."""
        if self.lora is None:
            raise ValueError("this policy has no LoRA spec")
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(r=self.lora.r, lora_alpha=self.lora.alpha, lora_dropout=self.lora.dropout,
                         target_modules=self.lora.target_modules, bias="none")
        if self.model is self.base:
            with warnings.catch_warnings():
                # peft's PeftModel.__init__ (not lowshot) reads the `is_gradient_checkpointing`
                # alias that transformers 5 deprecated; only that message, only in this call
                warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                        category=FutureWarning)
                self.model = get_peft_model(self.base, cfg, adapter_name=name)
        elif name not in self.model.peft_config:
            self.model.add_adapter(name, cfg)
        if name not in self.value_heads:
            head = nn.Linear(self._hidden, 1).to(self.device)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            self.value_heads[name] = head
        self.use(name)

    def use(self, name: str) -> None:
        """Activate listener ``name``'s adapter (swap without reloading the model)."""
        self.model.set_adapter(name)
        self.adapter = name

    def adapter_names(self) -> list[str]:
        """Names of the LoRA adapters added so far (empty before the first)."""
        return [] if self.model is self.base else list(self.model.peft_config)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Active adapter's LoRA weights + its value head (or all weights without LoRA)."""
        if self.lora is None:
            return [p for p in self.base.parameters()] + list(self.value_heads.parameters())
        name = self.adapter
        params = [p for n, p in self.model.named_parameters() if "lora_" in n and f".{name}." in n]
        return params + list(self.value_heads[name].parameters())

    def adapter_state(self, name: str | None = None) -> dict[str, Tensor]:
        """LoRA + value-head tensors of adapter ``name`` (for checkpoints and snapshots).

        Returns:
            ``{"lora/<peft key>": tensor, "value_head/weight": [1, H], "value_head/bias": [1]}``
            (LoRA A ``[r, in]`` and B ``[out, r]`` per target module), detached copies.
        """
        from peft import get_peft_model_state_dict

        name = name or self.adapter
        state = {f"lora/{k}": v.detach().clone()
                 for k, v in get_peft_model_state_dict(self.model, adapter_name=name).items()}
        for k, v in self.value_heads[name].state_dict().items():
            state[f"value_head/{k}"] = v.detach().clone()
        return state

    def load_adapter_state(self, state: dict[str, Tensor], name: str | None = None) -> None:
        """Inverse of :meth:`adapter_state` (the adapter must exist; tensors shaped as there:
        LoRA A ``[r, in]``, B ``[out, r]``, value head ``[1, H]`` / ``[1]``)."""
        from peft import set_peft_model_state_dict

        name = name or self.adapter
        lora = {k[5:]: v for k, v in state.items() if k.startswith("lora/")}
        set_peft_model_state_dict(self.model, lora, adapter_name=name)
        head = {k[11:]: v for k, v in state.items() if k.startswith("value_head/")}
        if head and name in self.value_heads:
            self.value_heads[name].load_state_dict(head)

    def snapshot(self, name: str | None = None) -> str:
        """Copy adapter ``name`` into ``<name>__snapshot`` (NLPO's mask policy); returns its name."""
        name = name or self.adapter
        assert name is not None
        snap = f"{name}__snapshot"
        active = self.adapter
        if snap not in self.model.peft_config:
            from peft import LoraConfig

            self.model.add_adapter(snap, LoraConfig(r=self.lora.r, lora_alpha=self.lora.alpha,
                                                    target_modules=self.lora.target_modules))
            self.value_heads[snap] = nn.Linear(self._hidden, 1).to(self.device)
        self.load_adapter_state(self.adapter_state(name), snap)
        self.use(active)  # add_adapter/set_adapter may change which adapter is trainable
        return snap

    @contextmanager
    def reference(self) -> Iterator[None]:
        """pi_0: the adapter disabled (no second model copy)."""
        if self.model is self.base:
            raise ValueError("pi_0 needs a LoRA adapter (the base weights are the reference)")
        with self.model.disable_adapter():
            yield

    @contextmanager
    def using(self, name: str) -> Iterator[None]:
        """Context manager: adapter ``name`` is active inside, the previous one after."""
        active = self.adapter
        self.use(name)
        try:
            yield
        finally:
            self.use(active)

    # ------------------------------------------------------------------ forward
    def _autocast(self) -> Any:
        """bf16 autocast on the model's device when ``compute.precision`` asks for it."""
        if self.compute.precision == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)

    def _extras(self, inputs: dict[str, Tensor], tokens: Tensor) -> dict[str, Tensor]:
        """Model inputs other than ids and mask, extended over the completion ``tokens``."""
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        if "token_type_ids" in extra:  # PaliGemma: completion tokens are the suffix (type 1)
            extra["token_type_ids"] = torch.cat([extra["token_type_ids"], torch.ones_like(tokens)], 1)
        if "mm_token_type_ids" in extra:  # Qwen2-VL: completion tokens are text (type 0)
            mm = extra["mm_token_type_ids"]
            extra["mm_token_type_ids"] = torch.cat([mm, torch.zeros_like(tokens, dtype=mm.dtype)], 1)
        return extra

    def _ban(self, logits: Tensor) -> Tensor:
        """Float32 ``logits`` with the never-generated special tokens at -inf."""
        logits = logits.float()
        if self.banned_ids.numel():
            logits = logits.index_fill(-1, self.banned_ids.to(logits.device), float("-inf"))
        return logits

    def _forward(self, inputs: dict[str, Tensor], tokens: Tensor, mask: Tensor,
                 hidden: bool = False) -> tuple[Tensor, Tensor | None]:
        """Logits for completion positions 0..T (``[B, T+1, V]``) and last hidden states ``[B, T+1, H]``."""
        ids = torch.cat([inputs["input_ids"], tokens], 1)
        att = torch.cat([inputs["attention_mask"], mask.to(inputs["attention_mask"].dtype)], 1)
        extra = self._extras(inputs, tokens)
        if self.pass_position_ids:
            extra["position_ids"] = (att.long().cumsum(-1) - 1).clamp_min(0)
        with self._autocast():
            out = self.model(input_ids=ids, attention_mask=att, use_cache=False,
                             output_hidden_states=hidden, **extra)
        P, T = inputs["input_ids"].shape[1], tokens.shape[1]
        logits = self._ban(out.logits[:, P - 1:P + T])
        hs = out.hidden_states[-1][:, P - 1:P + T] if hidden else None
        return logits, hs

    def _to_device(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in inputs.items()}

    @torch.no_grad()
    def sample(self, episodes: Sequence[Any], cfg: SamplingConfig,
               mask_adapter: str | None = None, mask_top_p: float = 1.0,
               min_tokens_to_keep: int = 1) -> Rollout:
        """Sample one completion per episode with the active adapter.

        Args:
            episodes: whatever ``encode`` accepts.
            cfg: sampling settings.
            mask_adapter: NLPO: adapter whose top-``mask_top_p`` nucleus restricts the actions.
            mask_top_p: nucleus mass of the mask policy.
            min_tokens_to_keep: NLPO lower bound on the kept set.
        """
        was_training = self.model.training
        self.model.eval()
        inputs = self._to_device(self.encode(episodes))
        B = inputs["input_ids"].shape[0]
        dev = self.device
        tokens = torch.zeros(B, 0, dtype=torch.long, device=dev)
        mask = torch.zeros(B, 0, device=dev)
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        amasks: list[Tensor] = []
        lps: list[Tensor] = []
        full_lps: list[Tensor] = []
        keep_ids = torch.tensor([self.eos_id], device=dev)
        decoder = _Decoder(self, inputs, cfg.use_cache)
        nucleus_decoder = _Decoder(self, inputs, cfg.use_cache) if mask_adapter is not None else None
        for _ in range(cfg.max_new_tokens):
            full = decoder.next_logits(tokens, mask)
            logits = full
            if mask_adapter is not None:
                with self.using(mask_adapter):
                    ml = nucleus_decoder.next_logits(tokens, mask)
                am = nucleus_mask(ml, mask_top_p, min_tokens_to_keep, keep_ids)
                amasks.append(am)
                logits = logits.masked_fill(~am, float("-inf"))
            nxt, lp = _choose(logits, cfg)
            nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
            live = (~done).float()
            full_lp = full.log_softmax(-1).gather(-1, nxt[:, None]).squeeze(-1)
            lps.append(torch.where(done, torch.zeros_like(lp), lp))  # pad: 0, never -inf * 0
            full_lps.append(torch.where(done, torch.zeros_like(full_lp), full_lp))
            tokens = torch.cat([tokens, nxt[:, None]], 1)
            mask = torch.cat([mask, live[:, None]], 1)
            done = done | (nxt == self.eos_id)
            if bool(done.all()):
                break
        texts = [self.tokenizer.decode(t[m.bool()].tolist(), skip_special_tokens=True).strip()
                 for t, m in zip(tokens, mask)]
        self.model.train(was_training)

        def stack(xs: list[Tensor]) -> Tensor:
            return torch.stack(xs, 1) if xs else torch.zeros(B, 0, device=dev)

        return Rollout(inputs, tokens, mask, texts, torch.stack(amasks, 1) if amasks else None,
                       stack(lps), stack(full_lps))

    def logprobs(self, rollout: Rollout, values: bool = False, use_action_masks: bool = True
                 ) -> tuple[Tensor, Tensor | None]:
        """Log-probs ``[B, T]`` of the rollout's tokens under the active adapter (and values ``[B, T]``).

        Call inside :meth:`reference` for pi_0. NLPO masks are applied when present and
        ``use_action_masks``.
        """
        logits, hs = self._forward(rollout.inputs, rollout.tokens, rollout.mask, hidden=values)
        am = rollout.action_masks if use_action_masks else None
        lp = masked_token_logprobs(logits[:, :-1], rollout.tokens, am)
        v = None
        if values:
            head = self.value_heads[self.adapter] if self.adapter else None
            if head is None:
                raise ValueError("values need an adapter with a value head")
            v = head(hs[:, :-1].float()).squeeze(-1)
        return lp, v

    def describe(self, episodes: Sequence[Any], max_new_tokens: int = 32, use_cache: bool = True) -> list[str]:
        """Greedy descriptions (evaluation)."""
        return self.sample(episodes, SamplingConfig(max_new_tokens=max_new_tokens, do_sample=False,
                                                    use_cache=use_cache)).texts


class _Decoder:
    """Next-token logits ``[B, V]`` of the active adapter over a growing completion.

    With ``use_cache`` the first call encodes the prompt (images included) and keeps the
    keys/values; each later call runs only the newest token, at the position the attention
    mask gives it (for models with their own multimodal RoPE, Qwen2-VL, the text position plus
    the model's stored ``rope_deltas``). Without it every call re-runs the whole sequence.
    One decoder per adapter: NLPO's mask policy keeps its own cache.
    """

    def __init__(self, policy: SpeakerPolicy, inputs: dict[str, Tensor], use_cache: bool) -> None:
        self.policy, self.inputs, self.use_cache = policy, inputs, use_cache
        self.cache: Any = None
        self.fed = 0  # completion tokens already in the cache

    def next_logits(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Logits of the token after ``tokens`` (``[B, T]``, ``mask`` ``[B, T]``): ``[B, V]``."""
        pol = self.policy
        if not self.use_cache:
            return pol._forward(self.inputs, tokens, mask)[0][:, -1]
        att = torch.cat([self.inputs["attention_mask"], mask.to(self.inputs["attention_mask"].dtype)], 1)
        if self.cache is None:
            if tokens.shape[1]:
                raise ValueError("a cached decoder starts before the first completion token")
            ids, kw = self.inputs["input_ids"], self._prompt_inputs(att)
        else:
            if tokens.shape[1] != self.fed + 1:
                raise ValueError("a cached decoder is fed one token per call")
            ids, kw = tokens[:, -1:], self._step_inputs(att, tokens)
            kw[pol._cache_arg] = self.cache
        if pol._logits_to_keep:
            kw["logits_to_keep"] = 1
        with pol._autocast():
            out = pol.model(input_ids=ids, attention_mask=att, use_cache=True, **kw)
        self.cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        self.fed = tokens.shape[1]
        return pol._ban(out.logits[:, -1])

    def _prompt_inputs(self, att: Tensor) -> dict[str, Tensor]:
        kw = {k: v for k, v in self.inputs.items() if k not in ("input_ids", "attention_mask")}
        if self.policy.pass_position_ids:
            kw["position_ids"] = (att.long().cumsum(-1) - 1).clamp_min(0)
        return kw

    def _step_inputs(self, att: Tensor, tokens: Tensor) -> dict[str, Tensor]:
        extra = self.policy._extras(self.inputs, tokens[:, -1:])
        kw = {k: extra[k][:, -1:] for k in ("token_type_ids", "mm_token_type_ids") if k in extra}
        pos = (att.long().cumsum(-1) - 1).clamp_min(0)[:, -1:]
        if self.policy.pass_position_ids:
            kw["position_ids"] = pos
        else:
            deltas = getattr(getattr(self.policy.base, "model", None), "rope_deltas", None)
            if deltas is not None:
                kw["position_ids"] = pos[None] + deltas.to(pos.device)
        return kw


def _choose(logits: Tensor, cfg: SamplingConfig) -> tuple[Tensor, Tensor]:
    """Greedy or temperature / top-p sampling from ``[B, V]`` logits.

    Returns:
        ``([B] token ids, [B] their log-probs under the distribution sampled from)``;
        greedy decoding reports the untempered log-probs.
    """
    if not cfg.do_sample:
        nxt = logits.argmax(-1)
        return nxt, logits.log_softmax(-1).gather(-1, nxt[:, None]).squeeze(-1)
    logits = logits / max(cfg.temperature, 1e-6)
    if cfg.top_p < 1.0:
        logits = logits.masked_fill(~nucleus_mask(logits, cfg.top_p, 1), float("-inf"))
    logp = logits.log_softmax(-1)
    nxt = torch.multinomial(logp.exp(), 1).squeeze(-1)
    return nxt, logp.gather(-1, nxt[:, None]).squeeze(-1)
