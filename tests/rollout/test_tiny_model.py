"""The tiny model factory: loads like any HF checkpoint, offline, deterministic, digit-level numbers."""

from __future__ import annotations

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
