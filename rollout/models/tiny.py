"""A tiny random-initialised Qwen2.5-VL checkpoint built locally, for tests, demos and CPU runs.

`build_tiny_model` writes a directory that loads like any Hugging Face checkpoint
(`AutoProcessor.from_pretrained(dir)`, `Qwen2_5_VLForConditionalGeneration.from_pretrained(dir)`),
fully offline: the weights come from a seeded random init, the tokenizer is a byte-level BPE trained
here with `tokenizers` on a small corpus (the instructions, grounding vocabulary, digits, the answer
tags), then Qwen's special tokens and a Qwen-style chat template are added. Digits are split one
by one before BPE (Qwen's own pre-tokenizer rule), so every number is a short digit sequence the
model can learn. The same seed and arguments give byte-identical tokenizer files and weights.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from infra.cache import build_once

SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
# Qwen2's pre-tokenizer split: letters runs, single digits, punctuation runs, whitespace.
PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                     r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

# Qwen's chat layout; every output is an expression so that whitespace control cannot eat newlines.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'video' or 'video' in part -%}{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'image' or 'image' in part -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in part -%}{{- part['text'] -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

COLOURS = "red green blue yellow white black orange purple pink gray brown cyan magenta".split()
THINGS = ("square circle triangle rectangle ball box star shape object person man woman child boy girl "
          "dog cat car bike bag cup door table chair window hat shirt dress jacket").split()
ACTIONS = ("moves walks runs turns appears disappears stops jumps enters leaves sits stands picks holds "
           "opens closes throws catches follows passes crosses slides bounces grows shrinks waves looks "
           "talks points carries pushes pulls").split()
PLACES = ("left right up down around toward away from the to of in on at with and then after before "
          "while next near far top bottom middle corner edge screen room street floor wall").split()

FORMAT_VERSION = 1  # bump when the builder's output changes, so cached tiny models are rebuilt
TINY_SIZES = {
    "small": {},  # build_tiny_model's defaults: 0.87 M parameters (vision tower 0.26 M)
    "medium": {"num_layers": 4, "vision_hidden": 128, "vision_depth": 4},  # 2.1 M (vision tower 1.1 M)
}
"""`model.tiny_size`: build arguments of each named size of the tiny model. `medium` has a vision
tower wide and deep enough to learn where a shape is on 112 px frames (docs/learning-run.md)."""
VOCAB_SIZE = 2000
"""Target vocabulary of the tiny tokenizer's BPE (its small corpus yields fewer tokens)."""


def _corpus(rng: random.Random) -> list[str]:
    """Text the BPE merges are learned from: instructions, queries, answers in all three formats."""
    from rollout.prompts import build_instruction

    lines = []
    for _ in range(600):
        query = (f"the {rng.choice(COLOURS)} {rng.choice(THINGS)} {rng.choice(ACTIONS)} "
                 f"{rng.choice(PLACES)} the {rng.choice(COLOURS)} {rng.choice(THINGS)}")
        count = rng.randint(1, 24)
        times = [i * 0.5 for i in range(count)]
        size = (rng.choice((112, 168, 224, 336)), rng.choice((84, 112, 168, 252)))
        for task in ("stvg-o1", "stvg-r1", "vtg"):
            lines.append(build_instruction(task, query, times, size).text)
        ts = rng.randint(0, 20)
        te = ts + rng.randint(0, 10)
        boxes = ", ".join(f"{i}. [{rng.randint(0, 300)}, {rng.randint(0, 300)}, {rng.randint(0, 336)}, "
                          f"{rng.randint(0, 336)}]" for i in range(ts, te + 1))
        lines.append(f"<time> {ts} - {te} </time> <think_bbox> {boxes} </think_bbox> <pred_bbox> {boxes} </pred_bbox>")
        s, e = rng.uniform(0, 20), rng.uniform(20, 40)
        lines.append(f"<think>The {query} from {s:.2f} to {e:.2f}.</think><answer>{s:.2f} to {e:.2f}</answer>")
        lines.append(f"<think>object {rng.randint(1, 9)}</think><answer>Target ID: {rng.randint(1, 9)}, "
                     f"Time range: {s:.2f} to {e:.2f}</answer>")
    lines.append(" ".join(str(d) for d in range(10)) + " 0123456789 .,:;[]()<>/-")
    return lines


def build_tokenizer(vocab_size: int, seed: int):
    """A Qwen2Tokenizer whose byte-level BPE was trained here (deterministic for a seed)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import Qwen2Tokenizer

    backend = Tokenizer(BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    backend.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
    backend.train_from_iterator(_corpus(random.Random(seed)), trainer)
    model = json.loads(backend.to_str())["model"]
    tokenizer = Qwen2Tokenizer(
        vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]],
        eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None,
        extra_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")],
        model_max_length=32768,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, hidden_size: int = 128, num_layers: int = 2,
                     num_heads: int = 4, vocab_size: int = VOCAB_SIZE, vision_hidden: int = 64,
                     vision_depth: int = 2) -> Path:
    """Write a random-initialised Qwen2.5-VL checkpoint with its processor to `out_dir`."""
    import torch
    from transformers import (GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                              Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(vocab_size, seed)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(**tiny_config(tokenizer, hidden_size=hidden_size, num_layers=num_layers,
                                            num_heads=num_heads, vision_hidden=vision_hidden,
                                            vision_depth=vision_depth))
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"])
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(), chat_template=CHAT_TEMPLATE)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def tiny_config(tokenizer, *, hidden_size: int = 128, num_layers: int = 2, num_heads: int = 4,
                vision_hidden: int = 64, vision_depth: int = 2) -> dict:
    """The Qwen2_5_VLConfig arguments of the tiny model over `tokenizer` (build_tokenizer's); also
    what `stvg plan` sizes for model.path=tiny, without building the weights."""
    if hidden_size % num_heads or (hidden_size // num_heads) % 4:
        raise ValueError(f"hidden_size {hidden_size} / num_heads {num_heads} must be a multiple of 4")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    half = hidden_size // num_heads // 2  # rotary frequencies per head, split over (t, h, w)
    mrope = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    return dict(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 3,
            num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=max(1, num_heads // 2),
            max_position_embeddings=32768, rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=vision_depth, hidden_size=vision_hidden, intermediate_size=vision_hidden * 2,
            num_heads=max(1, vision_hidden // 16), out_hidden_size=hidden_size, patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=112,
            fullatt_block_indexes=[vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )


def tiny_size_arguments(size: str) -> dict:
    """build_tiny_model's arguments for a named size (TINY_SIZES); ValueError for another name."""
    if size not in TINY_SIZES:
        raise ValueError(f"tiny model size {size!r} must be one of: {', '.join(TINY_SIZES)}")
    return dict(TINY_SIZES[size])


def tiny_name(seed: int, size: str = "small") -> str:
    """How runs and plans name the tiny model: `tiny (seed 0)`, `tiny medium (seed 0)`."""
    return f"tiny (seed {seed})" if size == "small" else f"tiny {size} (seed {seed})"


def tiny_model_dir(cache_root: str | Path, **kwargs) -> Path:
    """A tiny model built once under `cache_root` (keyed by its arguments) and reused after.

    Safe when several processes ask at once: each builds into a private directory and the first
    to finish renames it into place.
    """
    key = json.dumps({"format": FORMAT_VERSION, **kwargs}, sort_keys=True)
    final = Path(cache_root) / f"tiny-qwen2_5_vl-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    return build_once(final, "config.json", lambda staging: build_tiny_model(staging, **kwargs))
