"""The tiny model factory: loads like any HF checkpoint, offline, deterministic, digit-level numbers."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest


def test_tiny_model_loads_offline_through_auto_classes(tiny_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert AutoConfig.from_pretrained(tiny_model).model_type == "qwen2_5_vl"
    # every special token Qwen uses is one id, and the config points at the right ones
    for token in ("<|im_start|>", "<|im_end|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"):
        assert len(processor.tokenizer(token, add_special_tokens=False).input_ids) == 1
    assert model.config.video_token_id == processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert model.config.vision_start_token_id == processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    params = sum(p.numel() for p in model.parameters())
    assert 0.3e6 < params < 5e6


def test_tiny_tokenizer_splits_numbers_into_single_digits(processor):
    tok = processor.tokenizer
    ids = tok("[12, 305]", add_special_tokens=False).input_ids
    pieces = [tok.decode([i]) for i in ids]
    assert "".join(pieces) == "[12, 305]"
    assert all(len(p.strip()) == 1 for p in pieces if any(ch.isdigit() for ch in p))
    assert [p.strip() for p in pieces if p.strip().isdigit()] == ["1", "2", "3", "0", "5"]


def test_chat_template_renders_qwen_layout_with_one_video_placeholder(processor):
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "hi"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>hi<|im_end|>\n"
                    "<|im_start|>assistant\n")


def test_tiny_model_is_deterministic_for_a_seed(tmp_path):
    from safetensors.torch import load_file

    from rollout.models.tiny import build_tiny_model

    kwargs = dict(hidden_size=32, num_layers=1, num_heads=2, vocab_size=600, vision_hidden=32, vision_depth=1)
    a = build_tiny_model(tmp_path / "a", seed=3, **kwargs)
    b = build_tiny_model(tmp_path / "b", seed=3, **kwargs)
    c = build_tiny_model(tmp_path / "c", seed=4, **kwargs)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    wa, wb, wc = (load_file(d / "model.safetensors") for d in (a, b, c))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    assert any(not (wa[k] == wc[k]).all() for k in wa)


def test_tiny_model_rejects_head_size_without_rotary_split(tmp_path):
    from rollout.models.tiny import build_tiny_model

    with pytest.raises(ValueError, match="multiple of 4"):
        build_tiny_model(tmp_path / "x", hidden_size=30, num_heads=5)


def test_the_medium_size_is_the_small_model_with_a_deeper_wider_vision_tower_and_twice_the_layers(tmp_path):
    from safetensors import safe_open

    from rollout.models.source import resolve_model_source

    def shapes(folder):
        with safe_open(str(Path(folder) / "model.safetensors"), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}

    small = Path(resolve_model_source("tiny", str(tmp_path), tiny_size="small").local_dir())
    medium_source = resolve_model_source("tiny", str(tmp_path), tiny_size="medium")
    medium = Path(medium_source.local_dir())
    assert medium != small and medium_source.describe() == "tiny medium (seed 0)"
    small_w, medium_w = shapes(small), shapes(medium)
    # hand count: 2 -> 4 decoder layers, 2 -> 4 vision blocks, vision width 64 -> 128
    layers = lambda w, part: {re.match(rf"(?:model\.)?{part}\.(\d+)\.", k).group(1) for k in w
                              if re.match(rf"(?:model\.)?{part}\.\d+\.", k)}
    assert (len(layers(small_w, r"(?:language_model\.)?layers")), len(layers(medium_w, r"(?:language_model\.)?layers"))) == (2, 4)
    assert (len(layers(small_w, r"visual\.blocks")), len(layers(medium_w, r"visual\.blocks"))) == (2, 4)
    patch = [k for k in medium_w if "patch_embed" in k][0]
    assert medium_w[patch][0] == 128 and small_w[patch][0] == 64
    count = lambda w: sum(math.prod(s) for s in w.values())
    assert 0.8e6 < count(small_w) < 0.95e6 and 2.0e6 < count(medium_w) < 2.3e6
    # the tokenizer is the seed's, whatever the size
    assert (small / "tokenizer.json").read_bytes() == (medium / "tokenizer.json").read_bytes()


def test_an_unknown_tiny_size_is_a_one_line_config_error():
    from infra.errors import ConfigError
    from trainer.config import ModelConfig

    with pytest.raises(ConfigError, match=r"model.tiny_size='large' is not allowed; choose one of: small, medium"):
        ModelConfig(tiny_size="large")
