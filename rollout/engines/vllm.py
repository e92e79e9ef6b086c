"""vLLM engine (GPU), written against vLLM's public offline API (LLM, SamplingParams, RequestOutput,
collective_rpc with a worker extension, logprobs_mode) of the release constraints.txt pins.

Verified on CPU only against tests/rollout/fake_vllm, a stand-in that follows that release's API
(request and output shapes, Qwen2.5-VL's video-with-metadata input, sampling-parameter checks) and
runs the checkpoint's own Hugging Face processor and model. vLLM's CUDA kernels, its own Qwen2.5-VL
implementation and its weight loaders have not run here (no GPU).

What it does:
- The engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0) so weights arrive without
  another inter-process hop; they are loaded through `llm.collective_rpc` into a small worker
  extension (rollout.engines.vllm_worker) that calls the model's own `load_weights` (Hugging Face
  names are mapped by vLLM). The prefix cache is reset after every load.
- Prompts go in as token ids with ONE `<|video_pad|>` (vLLM expands it itself) and the raw frames
  with the video metadata and processor kwargs the prompt was built with
  (`family.processor_video`): vLLM's Qwen2.5-VL refuses a video without metadata, and the metadata
  fixes the frame rate, hence second_per_grid_ts. After generation the expanded prompt ids vLLM used
  are compared with our PromptInputs.input_ids; any difference raises, since the learner would then
  score a different prompt.
- Log-probs: `logprobs=0` (the sampled token's) with `logprobs_mode="processed_logprobs"`: of the
  distribution sampled from (temperature applied), the convention of rollout.engines. Vision tokens
  are excluded with allowed_token_ids.
- Greedy decoding asks vLLM for one sequence (it refuses n > 1 at temperature 0) and repeats it n
  times, as the HF engine returns n identical greedy sequences.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Optional

from rollout.engines import GeneratedSequence, SamplingConfig

WORKER_EXTENSION = "rollout.engines.vllm_worker.WeightLoader"
LOAD_BUCKET_BYTES = 512 * 1024**2
FINISH_REASONS = ("stop", "length")  # vLLM's others (abort, error, repetition) mean the request failed


class VLLMEngine:
    needs_frames = True

    def __init__(self, model_dir: str, *, family: Any, processor: Any, dtype: str = "auto",
                 gpu_memory_utilization: float = 0.6, max_model_len: Optional[int] = None):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        import torch
        from vllm import LLM

        self.family = family
        self.processor = processor
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.llm = LLM(
            model=str(model_dir),
            dtype="bfloat16" if dtype == "auto" else dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            limit_mm_per_prompt={"image": 0, "video": 1},
            enable_prefix_caching=False,
            logprobs_mode="processed_logprobs",  # of the sampled (tempered) distribution
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
            SamplingParams(n=1 if greedy else n, temperature=0.0 if greedy else sampling.temperature,
                           top_p=1.0 if greedy else sampling.top_p, max_tokens=sampling.max_new_tokens,
                           logprobs=0, seed=None if sampling.seed is None else sampling.seed + i,
                           stop_token_ids=self.stop, allowed_token_ids=self.allowed, skip_special_tokens=True)
            for i in range(len(prompts))
        ]
        requests = [self._request(p) for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        repeats = n if greedy else 1
        results = []
        for prompt, output in zip(prompts, outputs):
            if list(output.prompt_token_ids) != prompt.input_ids.tolist():
                raise RuntimeError(f"vLLM expanded the prompt of sample {prompt.sample_id!r} to different token ids "
                                   "than the HF processor did; rollout and learner would disagree")
            results.append([self._sequence(prompt, o) for o in output.outputs for _ in range(repeats)])
        return results

    def _request(self, prompt: Any) -> dict:
        frames, metadata, processor_kwargs = self.family.processor_video(prompt)
        ids = prompt.input_ids.tolist()
        collapsed = [t for j, t in enumerate(ids) if t != self.video_token_id or j == 0 or ids[j - 1] != t]
        return {
            "prompt_token_ids": collapsed,
            # do_sample_frames=False: vLLM's own marker that these frames are already the sampled ones
            "multi_modal_data": {"video": (frames, dict(metadata, do_sample_frames=False))},
            "mm_processor_kwargs": processor_kwargs,
        }

    @staticmethod
    def _sequence(prompt: Any, output: Any) -> GeneratedSequence:
        if output.finish_reason not in FINISH_REASONS:
            raise RuntimeError(f"vLLM ended a completion of sample {prompt.sample_id!r} with finish_reason="
                               f"{output.finish_reason!r} (expected one of {', '.join(FINISH_REASONS)})")
        ids = list(output.token_ids)
        if output.logprobs is None or len(output.logprobs) != len(ids):
            raise RuntimeError(f"vLLM returned {0 if output.logprobs is None else len(output.logprobs)} log-prob "
                               f"entries for the {len(ids)} tokens of a completion of sample {prompt.sample_id!r}")
        logprobs = [step[token].logprob for step, token in zip(output.logprobs, ids)]
        return GeneratedSequence(token_ids=ids, text=output.text, logprobs=logprobs, finish_reason=output.finish_reason)

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
