"""Model families: the one place that knows a model's processor, prompt layout and special tokens.

A family turns sampled frames plus an instruction into `PromptInputs` (the exact token ids and
pixel tensors the engine consumes and the learner re-uses), names the tokens generation must never
emit, and loads the model class. Adding a model family = one module here + one registry entry.
Modules in this package import torch/transformers inside functions so configs load fast.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from infra.errors import ConfigError
from rollout.models.qwen2_5_vl import Qwen25VLFamily


class ModelFamily(Protocol):
    name: str
    frame_multiple: int
    """Frames must be sampled with width and height multiples of this (no processor resizing)."""

    def load_processor(self, model_dir: str) -> Any: ...

    def load_model(self, model_dir: str, *, dtype: Any = None, device: str = "cpu",
                   attn_implementation: str | None = None) -> Any: ...

    def build_prompt(self, processor: Any, *, sample_id: str, frames: Any, timestamps: Sequence[float],
                     instruction: Any, task: str, scale_to_original: tuple[float, float],
                     max_prompt_tokens: int, extra: dict | None = None) -> Any: ...

    def processor_video(self, prompt: Any) -> tuple[Any, dict, dict]:
        """(frames, video metadata, processor kwargs) the prompt was processed with (keep_frames=True)."""
        ...

    def blocked_token_ids(self, processor: Any) -> list[int]: ...

    def stop_token_ids(self, processor: Any) -> list[int]: ...

    def model_inputs(self, batch: Sequence[tuple[Any, Sequence[int]]], pad_token_id: int) -> dict: ...


FAMILIES: dict[str, ModelFamily] = {
    "qwen2_5_vl": Qwen25VLFamily(),
}
FAMILY_NAMES = tuple(FAMILIES)


def get_family(name: str) -> ModelFamily:
    """The registered family called `name` (raises ConfigError naming the known ones)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"model family {name!r} is not known; choose one of: {', '.join(FAMILY_NAMES)}") from None
