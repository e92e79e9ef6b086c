"""vLLM engine (GPU). NOT VERIFIED on these machines: no GPU, and vLLM pins its own torch and
transformers (docker/requirements-gpu.txt), so this module is written against vLLM's public API (LLM, SamplingParams,
collective_rpc with a worker extension, logprobs_mode) and only import-checked lazily. The HF engine is
its tested CPU twin behind the same interface.

What it does:
- The engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0) so weights arrive without
  another inter-process hop; they are loaded through `llm.collective_rpc` into a small worker
  extension (rollout.engines.vllm_worker) that calls the model's own `load_weights` (Hugging Face
  names are mapped by vLLM). The prefix cache is reset after every load.
- Prompts go in as token ids with ONE `<|video_pad|>` (vLLM expands it itself) and the raw frames
  as `multi_modal_data={"video": frames}`, with the processor told not to resize or resample them.
  After generation the expanded prompt ids vLLM used are compared with our PromptInputs.input_ids;
  any difference raises, since the learner would then score a different prompt.
- Log-probs: `logprobs=0` (the sampled token's) with `logprobs_mode="raw_logprobs"`: the raw model
  distribution, same convention as the HF engine. Vision tokens are excluded with allowed_token_ids.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Optional

from rollout.engines import GeneratedSequence, SamplingConfig

WORKER_EXTENSION = "rollout.engines.vllm_worker.WeightLoader"
LOAD_BUCKET_BYTES = 512 * 1024**2


class VLLMEngine:
    needs_frames = True

    def __init__(self, model_dir: str, *, family: Any, processor: Any, dtype: str = "auto",
                 gpu_memory_utilization: float = 0.6, max_model_len: Optional[int] = None):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        self.family = family
        self.processor = processor
        self.device = "cuda"
        self.llm = LLM(
            model=str(model_dir),
            dtype="bfloat16" if dtype == "auto" else dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            limit_mm_per_prompt={"image": 0, "video": 1},
            enable_prefix_caching=False,
            logprobs_mode="raw_logprobs",
            worker_extension_cls=WORKER_EXTENSION,
        )
        self.video_token_id = int(processor.video_token_id)
        self.stop = family.stop_token_ids(processor)
        blocked = set(family.blocked_token_ids(processor))
        vocab_size = len(processor.tokenizer)
        self.allowed = [i for i in range(vocab_size) if i not in blocked]
        self.policy_version = 0

    def generate(self, prompts: list, n: int, sampling: SamplingConfig) -> list[list[GeneratedSequence]]:
        from vllm import SamplingParams

        greedy = sampling.temperature == 0
        params = [
            SamplingParams(n=n, temperature=0.0 if greedy else sampling.temperature,
                           top_p=1.0 if greedy else sampling.top_p, max_tokens=sampling.max_new_tokens,
                           logprobs=0, seed=None if sampling.seed is None else sampling.seed + i,
                           stop_token_ids=self.stop, allowed_token_ids=self.allowed, skip_special_tokens=True)
            for i in range(len(prompts))
        ]
        requests = [self._request(p) for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        results = []
        for prompt, output in zip(prompts, outputs):
            if list(output.prompt_token_ids) != prompt.input_ids.tolist():
                raise RuntimeError(f"vLLM expanded the prompt of sample {prompt.sample_id!r} to different token ids "
                                   "than the HF processor did; rollout and learner would disagree")
            seqs = []
            for o in output.outputs:
                ids = list(o.token_ids)
                logprobs = [step[token].logprob for step, token in zip(o.logprobs or [], ids)]
                seqs.append(GeneratedSequence(token_ids=ids, text=o.text, logprobs=logprobs,
                                              finish_reason="stop" if o.finish_reason == "stop" else "length"))
            results.append(seqs)
        return results

    def _request(self, prompt: Any) -> dict:
        frames = prompt.extra.get("frames")
        if frames is None:
            raise ValueError(f"prompt {prompt.sample_id!r} has no extra['frames']; build it with keep_frames=True")
        ids = prompt.input_ids.tolist()
        collapsed = [t for j, t in enumerate(ids) if t != self.video_token_id or j == 0 or ids[j - 1] != t]
        fps = 2.0 / float(prompt.second_per_grid_ts) if prompt.second_per_grid_ts else 2.0
        return {
            "prompt_token_ids": collapsed,
            "multi_modal_data": {"video": frames},
            "mm_processor_kwargs": {"do_resize": False, "do_sample_frames": False, "fps": fps},
        }

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        bucket, size = [], 0
        for name, tensor in named_tensors:
            bucket.append((name, tensor.to(self.device)))
            size += tensor.numel() * tensor.element_size()
            if size >= LOAD_BUCKET_BYTES:
                self.llm.collective_rpc("stvg_load_weights", args=(bucket,))
                bucket, size = [], 0
        if bucket:
            self.llm.collective_rpc("stvg_load_weights", args=(bucket,))
        self.llm.reset_prefix_cache()
        self.policy_version = int(version)
