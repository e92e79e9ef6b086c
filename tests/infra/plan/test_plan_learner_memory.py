"""Learner memory per GPU: ZeRO-3 model states against DeepSpeed's own estimator, and activations
against the bytes autograd really saves in the learner's forward on a small Qwen2.5-VL (bf16, CPU)."""

from __future__ import annotations

import json

import pytest

from infra.plan.learner import Workload, activations, model_state_bytes
from infra.plan.shapes import shapes_from_config
from infra.plan.source import SHIPPED_DIR

VIDEO_TOKEN, VISION_START, VISION_END, IMAGE_TOKEN = 995, 993, 994, 996
VOCAB = 1000


@pytest.mark.parametrize("name", ["qwen2.5-vl-3b", "qwen2.5-vl-7b", "qwen2.5-vl-72b"])
@pytest.mark.parametrize("nodes,gpus_per_node", [(1, 1), (1, 8), (2, 8), (4, 8)])
def test_zero3_model_states_equal_deepspeeds_estimator(name, nodes, gpus_per_node):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    shapes = shapes_from_config(json.loads((SHIPPED_DIR / f"{name}.json").read_text()), name)
    _, per_gpu, _ = estimate_zero3_model_states_mem_needs(
        shapes.params, shapes.largest_layer, num_gpus_per_node=gpus_per_node, num_nodes=nodes,
        cpu_offload=False, cpu_offload_params=False, zero_init=True)
    assert model_state_bytes(shapes.params, shapes.largest_layer, nodes * gpus_per_node) == per_gpu


def test_seven_b_on_eight_gpus_by_hand():
    # 8,292,166,656 parameters x 18 bytes / 8 ranks + the 152,064 x 3,584 embedding gathered in fp32
    assert model_state_bytes(8_292_166_656, 152_064 * 3_584, 8) == 18 * 8_292_166_656 // 8 + 4 * 544_997_376


def _config(layers=2, hidden=256, heads=8, kv_heads=2, intermediate=704, vision_depth=2, vision_hidden=128,
            vision_intermediate=256, vision_heads=4) -> dict:
    return {"model_type": "qwen2_5_vl", "image_token_id": IMAGE_TOKEN, "video_token_id": VIDEO_TOKEN,
            "vision_start_token_id": VISION_START, "vision_end_token_id": VISION_END,
            "text_config": {"vocab_size": VOCAB, "hidden_size": hidden, "intermediate_size": intermediate,
                            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                            "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 0,
                            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                                "mrope_section": [4, 6, 6] if hidden // heads == 32 else [2, 3, 3]}},
            "vision_config": {"depth": vision_depth, "hidden_size": vision_hidden,
                              "intermediate_size": vision_intermediate, "num_heads": vision_heads,
                              "out_hidden_size": hidden, "fullatt_block_indexes": [vision_depth - 1]}}


def _saved_bytes(config: dict, grid: tuple[int, int, int], text: int, completion: int, rows: int, attention: str,
                 checkpointing: bool) -> tuple[int, int]:
    """(bytes autograd saves for backward in the learner's forward, sequence length): every saved
    tensor's storage counted once, parameters excluded. Each row has its own video."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from rollout.types import Completion, PromptInputs
    from trainer.learner.batch import TrainItem, collate
    from trainer.learner.engine import enable_checkpointing
    from trainer.learner.logprobs import completion_logprobs

    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration._from_config(Qwen2_5_VLConfig(**config), dtype=torch.bfloat16,
                                                            attn_implementation=attention).train()
    if checkpointing:
        enable_checkpointing(model)  # as the learner does
    t, h, w = grid
    ids = torch.cat([torch.randint(20, 900, (text,)), torch.tensor([VISION_START]),
                     torch.full((t * h * w // 4,), VIDEO_TOKEN), torch.tensor([VISION_END]),
                     torch.randint(20, 900, (4,))])
    items = []
    for row in range(rows):
        prompt = PromptInputs(sample_id=f"p{row}", input_ids=ids, video_grid_thw=torch.tensor([[t, h, w]]),
                              pixel_values_videos=torch.randn(t * h * w, 3 * 2 * 14 * 14).bfloat16(),
                              second_per_grid_ts=1.0, frame_timestamps=[0.5 * i for i in range(2 * t)],
                              frame_size=(w * 14, h * 14), scale_to_original=(1.0, 1.0),
                              extra={"video_token_id": VIDEO_TOKEN})
        tokens = torch.randint(20, 900, (completion,)).tolist()
        items.append(TrainItem(prompt, Completion(prompt_index=row, group_id=str(row), token_ids=tokens, text="",
                                                  logprobs=[-1.0] * completion, finish_reason="length",
                                                  policy_version=0), advantage=1.0))
    batch = collate(items, pad_token_id=0, video_token_id=VIDEO_TOKEN)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        completion_logprobs(model, batch, 1.0, with_entropy=True)
    return sum(saved.values()), len(ids) + completion


CASES = {  # name: (config overrides, grid, text tokens, completion tokens, rows, attention, checkpointing)
    "sdpa": ({}, (4, 8, 8), 40, 64, 1, "sdpa", False),
    "more layers, GQA 4 KV heads, wider": ({"layers": 3, "kv_heads": 4, "hidden": 384, "heads": 12,
                                            "intermediate": 1024}, (4, 8, 8), 40, 64, 1, "sdpa", False),
    "two rows, larger frames, odd windows": ({"vision_depth": 3}, (2, 16, 12), 30, 48, 2, "sdpa", False),
    "eager attention": ({}, (2, 16, 12), 40, 64, 1, "eager", False),
    "checkpointing": ({"layers": 3}, (4, 8, 8), 40, 64, 2, "sdpa", True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_activation_bytes_match_what_autograd_saves(case):
    overrides, grid, text, completion, rows, attention, checkpointing = CASES[case]
    config = _config(**overrides)
    measured, sequence = _saved_bytes(config, grid, text, completion, rows, attention, checkpointing)
    work = Workload(rows=rows, sequence_tokens=sequence, completion_tokens=completion,
                    patches=grid[0] * grid[1] * grid[2], frame_grid=grid[1:])
    planned = activations(shapes_from_config(config, case), work, attention, checkpointing)
    expected = planned.saved + planned.logits
    if checkpointing:
        # the rotary tables reach checkpointed layers as keyword arguments: alive, but not saved
        # through autograd, so the hook cannot see them
        expected -= planned.rotary
    # the plan leaves out int64 index tensors (gather and scatter indices), a few bytes per token
    assert measured * 0.997 <= expected <= measured
