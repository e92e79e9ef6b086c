"""Parameter counts, the largest layer and KV bytes per token from config.json alone, against the
model transformers builds on the meta device, the counts the model cards publish, and hand-worked
KV figures."""

from __future__ import annotations

import json

import pytest

from infra.errors import UserError
from infra.plan.shapes import shapes_from_config
from infra.plan.source import SHIPPED_DIR, find_model, shipped_names

# Parameter counts the Hugging Face model pages of Qwen/Qwen2.5-VL-*-Instruct show (rounded there).
PUBLISHED = {"qwen2.5-vl-3b": 3.75e9, "qwen2.5-vl-7b": 8.29e9, "qwen2.5-vl-32b": 33.5e9, "qwen2.5-vl-72b": 73.4e9}


def _meta_counts(config_path) -> tuple[int, int, int]:
    """(total, vision tower, largest single module's own) parameters of the model built on meta."""
    import torch
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(AutoConfig.from_pretrained(str(config_path)))
    total = sum(p.numel() for p in model.parameters())  # a tied lm_head is listed once
    vision = sum(p.numel() for p in model.model.visual.parameters())
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    return total, vision, largest


def test_shipped_configs_are_the_four_published_sizes():
    assert shipped_names() == list(PUBLISHED)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameter_counts_equal_the_model_built_on_the_meta_device(name):
    path = SHIPPED_DIR / f"{name}.json"
    shapes = shapes_from_config(json.loads(path.read_text()), name)
    total, vision, largest = _meta_counts(path)
    assert shapes.params == total
    assert shapes.vision.params == vision
    assert shapes.text.params == total - vision
    assert shapes.largest_layer == largest
    assert round(shapes.params / PUBLISHED[name], 2) == 1.0  # the published figure, to its rounding


def test_tiny_model_counts_equal_the_tiny_model_built_on_the_meta_device(tmp_path):
    source = find_model("tiny", tiny_seed=0)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(source.config))
    shapes = shapes_from_config(source.config, "tiny")
    total, vision, largest = _meta_counts(path)
    assert (shapes.params, shapes.vision.params, shapes.largest_layer) == (total, vision, largest)


def test_kv_bytes_per_token_hand_worked_for_7b_and_72b():
    seven = shapes_from_config(json.loads((SHIPPED_DIR / "qwen2.5-vl-7b.json").read_text()), "7b")
    seventy_two = shapes_from_config(json.loads((SHIPPED_DIR / "qwen2.5-vl-72b.json").read_text()), "72b")
    # 2 (K, V) x 28 layers x 4 KV heads x (3584 / 28 = 128) head dim x 2 bytes (bf16)
    assert seven.kv_bytes_per_token() == 2 * 28 * 4 * 128 * 2 == 57344
    # 2 x 80 layers x 8 KV heads x (8192 / 64 = 128) x 2 bytes; over 4 tensor-parallel GPUs, 2 heads each
    assert seventy_two.kv_bytes_per_token() == 2 * 80 * 8 * 128 * 2 == 327680
    assert seventy_two.kv_bytes_per_token(tensor_parallel=4) == 327680 // 4
    # float32 KV cache: twice the bytes
    assert seven.kv_bytes_per_token(dtype_bytes=4) == 2 * 57344


def test_a_config_of_another_model_type_is_a_clear_error():
    with pytest.raises(UserError, match="model_type 'llama' cannot be planned"):
        shapes_from_config({"model_type": "llama", "hidden_size": 4096}, "/models/llama/config.json")
    with pytest.raises(UserError, match="config.json lacks"):
        shapes_from_config({"model_type": "qwen2_5_vl", "hidden_size": 4096}, "cfg")
