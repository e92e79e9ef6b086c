"""Hugging Face `generate` engine: the CPU engine (and a GPU fallback when vLLM is absent).

SDPA attention on CPU; flash_attention_2 when flash-attn and CUDA are present (GPU: not verified on
these machines). One `generate` call per worker call with num_return_sequences=n: a single prompt
(rollout.prompts_per_request=1, the default) enters unpadded, so its log-probs match an unpadded
forward pass; several prompts are left-padded into one batch (positions follow the attention mask;
log-probs then differ from an unpadded pass by float rounding only), which on a small model costs
little more per decoding step than one prompt does, so a step's generation is several times faster.
The vision tower runs once per prompt either way.
Per-token log-probs come from the raw logits (`output_logits=True`) divided by the sampling
temperature, over the whole vocabulary, see rollout.engines. On a
large vocabulary this keeps [n, steps, vocab] logits until generation ends; use vLLM on GPUs.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Optional

from rollout.engines import GeneratedSequence, SamplingConfig


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


class HFEngine:
    needs_frames = False

    def __init__(self, model_dir: str, *, family: Any, processor: Any, dtype: str = "auto",
                 device: Optional[str] = None):
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.family = family
        self.processor = processor
        self.model = family.load_model(model_dir, dtype=resolve_dtype(dtype, self.device), device=self.device)
        self.model.requires_grad_(False)
        self.blocked = family.blocked_token_ids(processor)
        self.stop = family.stop_token_ids(processor)
        self.pad_id = processor.tokenizer.pad_token_id if processor.tokenizer.pad_token_id is not None else self.stop[0]
        self.policy_version = 0

    def generate(self, prompts: list, n: int, sampling: SamplingConfig) -> list[list[GeneratedSequence]]:
        """n sequences for each prompt, all prompts in one generate call (seeded by sampling.seed)."""
        if not prompts:
            return []
        flat = self._generate_batch(prompts, n, sampling, sampling.seed)
        return [flat[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _generate_batch(self, prompts: list, n: int, sampling: SamplingConfig,
                        seed: Optional[int]) -> list[GeneratedSequence]:
        import torch

        inputs = self.family.model_inputs([(prompt, []) for prompt in prompts], self.pad_id, padding_side="left")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.model.dtype)
        prompt_len = inputs["input_ids"].shape[1]
        greedy = sampling.temperature == 0
        with torch.no_grad(), _seeded(seed, self.device):
            out = self.model.generate(
                **inputs,
                do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                top_k=None if greedy else 0,  # sampling: no top-k (transformers would default to 50)
                num_return_sequences=n,
                max_new_tokens=sampling.max_new_tokens,
                suppress_tokens=self.blocked or None,
                eos_token_id=self.stop,
                pad_token_id=self.pad_id,
                return_dict_in_generate=True,
                output_logits=True,
            )
        tokens = out.sequences[:, prompt_len:]
        logits = torch.stack(out.logits, dim=1)[:, : tokens.shape[1]].float()
        if not greedy:  # the sampled distribution, as the learner scores it (logits / temperature)
            logits = logits / sampling.temperature
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        stop = set(self.stop)
        results = []
        for row_tokens, row_logprobs in zip(tokens.tolist(), logprobs.tolist()):
            end = next((j + 1 for j, t in enumerate(row_tokens) if t in stop), None)
            finish = "stop" if end is not None else "length"
            end = end if end is not None else len(row_tokens)
            ids = row_tokens[:end]
            text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
            results.append(GeneratedSequence(token_ids=ids, text=text, logprobs=row_logprobs[:end], finish_reason=finish))
        return results

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        import torch

        params = dict(self.model.named_parameters())
        params.update(dict(self.model.named_buffers()))
        with torch.no_grad():
            for name, tensor in named_tensors:
                target = params.get(name)
                if target is None:
                    raise KeyError(f"weight {name!r} is not a parameter of the rollout model "
                                   f"({type(self.model).__name__}); send Hugging Face parameter names")
                if tuple(target.shape) != tuple(tensor.shape):
                    raise ValueError(f"weight {name!r} has shape {tuple(tensor.shape)}, the rollout model "
                                     f"expects {tuple(target.shape)}")
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))
        self.policy_version = int(version)


@contextlib.contextmanager
def _seeded(seed: Optional[int], device: str):
    """Seed torch's RNG for one call without disturbing the caller's random state."""
    if seed is None:
        yield
        return
    import torch

    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
