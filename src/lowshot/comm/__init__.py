"""Referring-expression games between communicating agents (thesis ch. 7, app. F).

The library of the comm family (its recipe is :mod:`lowshot.recipes.comm`).

Sub-modules (import them directly; the ones that need transformers/peft import them
lazily so that the core library works without the ``comm`` extra):

* :mod:`~lowshot.comm.attributes`  CLEVR attribute vocabulary and colours
* :mod:`~lowshot.comm.render`      procedural CLEVR-like scenes (PIL) with annotations
* :mod:`~lowshot.comm.perception`  listener-side weaknesses, image composition, red circle
* :mod:`~lowshot.comm.parsing`     REI keyword reward parser
* :mod:`~lowshot.comm.segmentation` PaliGemma <loc>/<seg> answers -> masks (big_vision VQ-VAE decoder)
* :mod:`~lowshot.comm.games`       REI / RES episodes, rewards, evaluation
* :mod:`~lowshot.comm.gt_speaker`  ground-truth CLEVR speaker with attribute ablations
* :mod:`~lowshot.comm.listeners`   scripted pixel listeners (REI and RES)
* :mod:`~lowshot.comm.agents`      speaker / listener interfaces
* :mod:`~lowshot.comm.mllm`        LLaVA / Qwen2-VL / PaliGemma agents on transformers
* :mod:`~lowshot.comm.policy`      trainable speaker policy: LoRA adapters, value head
* :mod:`~lowshot.comm.episodes`    image items and REI / RES episode types (shared by agents and games)
* :mod:`~lowshot.comm.adapt`       PPO / NLPO / KTO online updates and the adaptation loop
* :mod:`~lowshot.comm.world`       the offline world (tiny word-level speaker LM)
* :mod:`~lowshot.comm.tiny`        word-level tokenizers, tiny random LM / LLaVA / Qwen2-VL / PaliGemma
* :mod:`~lowshot.comm.datasets`    CLEVR, CUB-200-2011, ImageNet folders, RefCOCO readers
"""
