"""Qwen2.5-VL: processor, prompt layout, vision special tokens, model class (transformers of
constraints.txt).

Frames reach the processor exactly as sampled (width and height multiples of 28, see
`infra.data.video.sample_frames(size_multiple=28)`): `do_resize=False` and `do_sample_frames=False`,
so the pixel grid is (T / 2, H / 14, W / 14) and nothing is resampled behind our back. The video
metadata handed to the processor makes its `second_per_grid_ts` (seconds per temporal grid step,
which drives the time-aligned mRoPE) equal to 2 x the real spacing of the sampled frames.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from infra.errors import UserError

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
# Frames reach the video processor as sampled: never resized, resampled or capped in pixels.
PROCESSOR_KWARGS = {"do_resize": False, "do_sample_frames": False, "cap_pixels_per_frame": False}


class Qwen25VLFamily:
    name = "qwen2_5_vl"
    frame_multiple = 28  # patch 14 x spatial merge 2
    temporal_patch_size = 2

    def load_processor(self, model_dir: str) -> Any:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(str(model_dir))

    def load_model(self, model_dir: str, *, dtype: Any = None, device: str = "cpu",
                   attn_implementation: str | None = None) -> Any:
        import torch
        from transformers import Qwen2_5_VLForConditionalGeneration

        from rollout.models.attention import choose_attention, flash_attn_importable

        dtype = dtype or torch.float32
        attn_implementation = choose_attention(
            attn_implementation or "auto", cuda=device.startswith("cuda") and torch.cuda.is_available(),
            half_precision=dtype in (torch.bfloat16, torch.float16), flash_available=flash_attn_importable(),
            key="attn_implementation", precision_key="rollout.dtype")
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            str(model_dir), dtype=dtype, attn_implementation=attn_implementation)
        return model.to(device).eval()

    def build_prompt(self, processor: Any, *, sample_id: str, frames: Any, timestamps: Sequence[float],
                     instruction: Any, task: str, scale_to_original: tuple[float, float],
                     max_prompt_tokens: int, extra: dict | None = None) -> Any:
        """Processed prompt for `frames` ([T, H, W, 3] uint8 RGB, H and W multiples of 28).

        Raises UserError when the prompt is longer than `max_prompt_tokens` (never truncates: a cut
        multimodal prompt no longer matches its video features).
        """
        import numpy as np
        from transformers.video_utils import VideoMetadata

        from rollout.types import PromptInputs

        frames = np.ascontiguousarray(np.asarray(frames))
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"sample {sample_id!r}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
        count, height, width = frames.shape[:3]
        if len(timestamps) != count:
            raise ValueError(f"sample {sample_id!r}: {count} frames but {len(timestamps)} timestamps")
        if height % self.frame_multiple or width % self.frame_multiple:
            raise ValueError(f"sample {sample_id!r}: frames are {width}x{height}; sample them with "
                             f"size_multiple={self.frame_multiple} so the processor need not resize them")
        spacing = _frame_spacing(timestamps)
        prompt_text = processor.apply_chat_template(self.messages(instruction), tokenize=False,
                                                    add_generation_prompt=True)
        metadata = VideoMetadata(**_video_metadata(count, spacing, width, height))
        out = processor(text=[prompt_text], videos=[frames], video_metadata=[metadata], return_tensors="pt",
                        **PROCESSOR_KWARGS)
        grid = out["video_grid_thw"]
        expected = [math.ceil(count / self.temporal_patch_size), height // 14, width // 14]
        if grid.tolist() != [expected]:
            raise RuntimeError(f"sample {sample_id!r}: the processor changed the video grid to {grid.tolist()}, "
                               f"expected {[expected]} for {count} frames of {width}x{height}")
        seconds_per_grid = float(out["second_per_grid_ts"][0])
        if abs(seconds_per_grid - self.temporal_patch_size * spacing) > 1e-6:
            raise RuntimeError(f"sample {sample_id!r}: processor second_per_grid_ts {seconds_per_grid} "
                               f"!= {self.temporal_patch_size} x frame spacing {spacing}")
        input_ids = out["input_ids"][0].long()
        if input_ids.numel() > max_prompt_tokens:
            video_tokens = int((input_ids == processor.video_token_id).sum())
            raise UserError(
                f"the prompt for sample {sample_id!r} has {input_ids.numel()} tokens ({video_tokens} of them "
                f"video, from {count} frames of {width}x{height}), more than rollout.max_prompt_tokens="
                f"{max_prompt_tokens}; lower rollout.fps, rollout.max_frames or rollout.max_long_side "
                f"(or raise rollout.max_prompt_tokens). Prompts are never truncated.")
        return PromptInputs(
            sample_id=sample_id,
            input_ids=input_ids,
            pixel_values_videos=out["pixel_values_videos"],
            video_grid_thw=grid.long(),
            second_per_grid_ts=seconds_per_grid,
            frame_timestamps=[float(t) for t in timestamps],
            frame_size=(int(width), int(height)),
            scale_to_original=(float(scale_to_original[0]), float(scale_to_original[1])),
            task=task,
            extra=dict(extra or {}, video_token_id=int(processor.video_token_id)),
        )

    def messages(self, instruction: Any) -> list[dict]:
        """The chat of one prompt: a user turn holding the video and the instruction, in its order
        (`stvg plan` counts the tokens of the same chat)."""
        video = {"type": "video"}
        text = {"type": "text", "text": instruction.text}
        return [{"role": "user", "content": [video, text] if instruction.video_first else [text, video]}]

    def processor_video(self, prompt: Any) -> tuple[Any, dict, dict]:
        """(frames, video metadata, processor kwargs) as `build_prompt` handed them to the processor,
        for a PromptInputs built with keep_frames=True: what another copy of the processor (vLLM's)
        needs to expand the prompt to the same tokens, pixels and second_per_grid_ts."""
        frames = prompt.extra.get("frames")
        if frames is None:
            raise ValueError(f"prompt {prompt.sample_id!r} has no extra['frames']; build it with keep_frames=True")
        count, height, width = frames.shape[:3]
        metadata = _video_metadata(count, _frame_spacing(prompt.frame_timestamps), width, height)
        return frames, metadata, dict(PROCESSOR_KWARGS)

    def blocked_token_ids(self, processor: Any) -> list[int]:
        """Vision special tokens: a completion holding one breaks the training forward
        ("Video features and video tokens do not match"), so generation must never emit them."""
        return _token_ids(processor.tokenizer, VISION_TOKENS)

    def stop_token_ids(self, processor: Any) -> list[int]:
        return _token_ids(processor.tokenizer, STOP_TOKENS)

    def model_inputs(self, batch: Sequence[tuple[Any, Sequence[int]]], pad_token_id: int,
                     padding_side: str = "right") -> dict:
        """Model kwargs for a forward pass over prompt + completion sequences, right-padded (or
        left-padded, for generating from several prompts at once; positions follow the mask).

        `batch` holds (PromptInputs, completion token ids) pairs. Right-padded, the logits that score
        completion token j of row b sit at position `len(prompt_b.input_ids) - 1 + j`. This is how
        the learner reproduces the rollout side's log-probs: same ids, same pixels, same mRoPE.
        """
        import torch

        rows = [torch.cat([p.input_ids.long(), torch.as_tensor(list(c), dtype=torch.long)]) for p, c in batch]
        length = max(r.numel() for r in rows)
        input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        mm_token_type_ids = torch.zeros((len(rows), length), dtype=torch.int32)
        for b, ((prompt, _), row) in enumerate(zip(batch, rows)):
            start = length - row.numel() if padding_side == "left" else 0
            input_ids[b, start: start + row.numel()] = row
            attention_mask[b, start: start + row.numel()] = 1
            video = prompt.input_ids == _video_token_id(prompt)
            mm_token_type_ids[b, start: start + prompt.input_ids.numel()][video] = 2
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "mm_token_type_ids": mm_token_type_ids,
            "pixel_values_videos": torch.cat([p.pixel_values_videos for p, _ in batch]),
            "video_grid_thw": torch.cat([p.video_grid_thw for p, _ in batch]),
            "second_per_grid_ts": torch.tensor([float(p.second_per_grid_ts or 1.0) for p, _ in batch]),
        }


def _video_token_id(prompt: Any) -> int:
    token_id = prompt.extra.get("video_token_id")
    if token_id is None:
        raise ValueError(f"prompt {prompt.sample_id!r} lacks extra['video_token_id'] (built by an old version?)")
    return int(token_id)


def _video_metadata(count: int, spacing: float, width: int, height: int) -> dict:
    """transformers' VideoMetadata fields for `count` frames `spacing` seconds apart, all of them
    kept: the processor then sets second_per_grid_ts = temporal_patch_size x spacing."""
    return {"total_num_frames": int(count), "fps": 1.0 / spacing, "width": int(width), "height": int(height),
            "duration": count * spacing, "frames_indices": list(range(count))}


def _frame_spacing(timestamps: Sequence[float]) -> float:
    """Mean seconds between sampled frames (1.0 for a single frame)."""
    if len(timestamps) < 2:
        return 1.0
    spacing = (timestamps[-1] - timestamps[0]) / (len(timestamps) - 1)
    return spacing if spacing > 0 else 1.0


def _token_ids(tokenizer: Any, tokens: Sequence[str]) -> list[int]:
    vocab = tokenizer.get_vocab()
    return sorted({vocab[t] for t in tokens if t in vocab})
