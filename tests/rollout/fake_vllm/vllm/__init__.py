"""A stand-in for vLLM's offline API (tests only: vLLM needs CUDA and cannot run on these machines).

It follows the public API of the vLLM release constraints.txt pins (0.33.0), as that release's own
source defines it (vllm/entrypoints/llm.py, sampling_params.py, outputs.py, logprobs.py,
inputs/llm.py, multimodal/parse.py, model_executor/models/qwen2_5_vl.py, v1/sample/sampler.py),
not as rollout/engines/vllm.py uses it:

- `LLM(model, *, dtype, seed, gpu_memory_utilization, mm_processor_kwargs, **engine_args)`: a
  keyword that is not one of vLLM's LLM/EngineArgs fields is a TypeError (only the fields listed
  in ENGINE_ARGS are modelled; extend the list from vLLM's EngineArgs when a test needs another);
  `logprobs_mode` is one of vLLM's four; `worker_extension_cls` is resolved by qualified name and
  becomes a base of the worker class, whose methods `collective_rpc(method, timeout, args, kwargs)`
  calls by name on the one worker (tensor_parallel_size=1) and returns as a list.
- `generate(prompts, sampling_params, *, use_tqdm)` -> one RequestOutput per prompt, in order.
  Prompts are TokensPrompt dicts. Qwen2.5-VL videos need metadata, `(frames, metadata dict)`, or
  the parser raises vLLM's ValueError; at most `limit_mm_per_prompt` items per modality. The
  checkpoint's Hugging Face processor runs on the frames with that metadata and the merged
  mm_processor_kwargs, and the prompt's single video placeholder is replaced by as many
  placeholders as the processed video needs (vLLM's PromptReplacement), so
  `RequestOutput.prompt_token_ids` are the expanded ids.
- SamplingParams checks what vLLM's _verify_args checks for the fields modelled here (n >= 1,
  temperature in [0, 2], top_p in (0, 1], max_tokens >= 1, logprobs >= -1, n == 1 when greedy,
  allowed_token_ids non-empty and inside the vocabulary), raising VLLMValidationError.
- Sampling as v1's Sampler: the raw logits (what logprobs_mode="raw_logprobs"/"raw_logits"
  report), then allowed_token_ids masks; greedy decoding takes the argmax of those (and the
  "processed" modes report them); otherwise temperature, then top_p (tokens outside the nucleus
  set to -inf), which the "processed" modes report, then
  a draw from a torch.Generator seeded per request (`seed`). A stop token or the model's EOS ends
  a sequence with finish_reason "stop" (the token stays in token_ids and leaves the text when it is
  special, `stop_reason` the stop id), max_tokens with "length". Each position's logprobs entry is
  {sampled token: Logprob}, plus the top `logprobs` tokens, each with its vocabulary rank.

The model behind it is the checkpoint's Hugging Face class (fp32, CPU) instead of vLLM's own
implementation; its load_weights takes Hugging Face parameter names, as vLLM's Qwen2.5-VL does
through its hf_to_vllm_mapper, and refuses unknown names and shapes as vLLM's loaders do. Not
modelled: batching, a KV cache (every step recomputes the whole sequence), prefix-cache contents
(reset_prefix_cache is only counted), CUDA graphs, several workers.

`LLM.calls` lists what was called (("generate", prompts, params), ("collective_rpc", method, args),
("reset_prefix_cache",)) for tests to read; it is not part of vLLM's API.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

__version__ = "0.33.0"

_SAMPLING_EPS = 1e-5
LOGPROBS_MODES = ("raw_logits", "raw_logprobs", "processed_logits", "processed_logprobs")
TOKENS_PROMPT_KEYS = {"prompt_token_ids", "prompt", "token_type_ids", "prompt_token_offsets", "multi_modal_data",
                      "media_io_kwargs", "mm_processor_kwargs", "multi_modal_uuids", "cache_salt"}
# EngineArgs fields this stand-in accepts (vLLM 0.33 has about 260; these are the ones modelled)
ENGINE_ARGS = {"max_model_len", "limit_mm_per_prompt", "enable_prefix_caching", "logprobs_mode", "max_logprobs",
               "worker_extension_cls", "max_num_seqs", "enforce_eager", "tensor_parallel_size"}


class VLLMError(Exception):
    """vllm.exceptions.VLLMError."""


class VLLMClientError(VLLMError):
    """vllm.exceptions.VLLMClientError."""


class VLLMValidationError(VLLMClientError):
    """vllm.exceptions.VLLMValidationError."""

    def __init__(self, message: str, *, parameter: Optional[str] = None, value: Any = None):
        super().__init__(message)
        self.parameter = parameter
        self.value = value


@dataclass
class Logprob:
    """vllm.logprobs.Logprob."""

    logprob: float
    rank: Optional[int] = None
    decoded_token: Optional[str] = None


@dataclass
class CompletionOutput:
    """vllm.outputs.CompletionOutput (the fields a text completion fills)."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: Optional[float]
    logprobs: Optional[list[dict[int, Logprob]]]
    finish_reason: Optional[str] = None
    stop_reason: Optional[int | str] = None

    def finished(self) -> bool:
        return self.finish_reason is not None


class RequestOutput:
    """vllm.outputs.RequestOutput."""

    def __init__(self, request_id: str, prompt: Optional[str], prompt_token_ids: Optional[list[int]],
                 prompt_logprobs: Any, outputs: list[CompletionOutput], finished: bool, **kwargs: Any):
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.prompt_logprobs = prompt_logprobs
        self.outputs = outputs
        self.finished = finished


@dataclass(kw_only=True)
class SamplingParams:
    """vllm.SamplingParams: the fields below, keyword-only (a msgspec Struct: unknown names are a
    TypeError), validated as vLLM validates them."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: Optional[int] = None
    stop_token_ids: Optional[list[int]] = None
    ignore_eos: bool = False
    max_tokens: Optional[int] = 16
    logprobs: Optional[int] = None
    allowed_token_ids: Optional[list[int]] = None
    skip_special_tokens: bool = True
    detokenize: bool = True

    def __post_init__(self) -> None:
        if 0 < self.temperature < 1e-2:
            self.temperature = 1e-2  # vLLM raises tiny temperatures to _MAX_TEMP, with a warning
        if self.seed == -1:
            self.seed = None
        self.stop_token_ids = list(dict.fromkeys(self.stop_token_ids or []))
        if self.logprobs is True:
            self.logprobs = 1
        if not isinstance(self.n, int) or self.n < 1:
            raise VLLMValidationError(f"n must be at least 1, got {self.n}.")
        if not 0.0 <= self.temperature <= 2.0:
            raise VLLMValidationError(f"temperature must be in [0, 2], got {self.temperature}.",
                                      parameter="temperature", value=self.temperature)
        if not 0.0 < self.top_p <= 1.0:
            raise VLLMValidationError(f"top_p must be in (0, 1], got {self.top_p}.", parameter="top_p",
                                      value=self.top_p)
        if self.max_tokens is not None and self.max_tokens < 1:
            raise VLLMValidationError(f"max_tokens must be at least 1, got {self.max_tokens}.",
                                      parameter="max_tokens", value=self.max_tokens)
        if self.logprobs is not None and self.logprobs != -1 and self.logprobs < 0:
            raise VLLMValidationError(f"logprobs must be non-negative or -1, got {self.logprobs}.")
        if self.temperature < _SAMPLING_EPS:
            self.top_p, self.top_k = 1.0, 0
            if self.n > 1:
                raise VLLMValidationError(f"n must be 1 when using greedy sampling, got {self.n}.")


class _Model:
    """What `model_runner.get_model()` returns: the checkpoint's model, loaded by HF names."""

    def __init__(self, hf_model: Any):
        self.hf_model = hf_model

    def load_weights(self, weights) -> set[str]:
        import torch

        params = dict(self.hf_model.named_parameters())
        loaded = set()
        with torch.no_grad():
            for name, tensor in weights:
                if name not in params:
                    raise ValueError(f"There is no module or parameter named '{name}' in "
                                     f"{type(self.hf_model).__name__}")
                target = params[name]
                assert target.shape == tensor.shape, (
                    f"Attempted to load weight ({tensor.shape}) into parameter ({target.shape})")
                target.copy_(tensor)
                loaded.add(name)
        return loaded


class _ModelRunner:
    def __init__(self, model: _Model):
        self.model = model

    def get_model(self) -> _Model:
        return self.model


class _Worker:
    def __init__(self, model: _Model):
        self.model_runner = _ModelRunner(model)


def _qualname(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


class LLM:
    """vllm.LLM for one Qwen2.5-VL checkpoint folder."""

    def __init__(self, model: str, *, dtype: str = "auto", seed: int = 0, gpu_memory_utilization: float = 0.92,
                 mm_processor_kwargs: Optional[dict] = None, tokenizer: Optional[str] = None,
                 trust_remote_code: bool = False, **engine_args: Any):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        unknown = set(engine_args) - ENGINE_ARGS
        if unknown:
            raise TypeError(f"EngineArgs.__init__() got unexpected keyword arguments {sorted(unknown)}")
        mode = engine_args.get("logprobs_mode", "raw_logprobs")
        if mode not in LOGPROBS_MODES:
            raise ValueError(f"logprobs_mode={mode!r} is not one of {LOGPROBS_MODES}")
        if dtype not in ("auto", "half", "float16", "bfloat16", "float", "float32"):
            raise ValueError(f"dtype={dtype!r} is not a ModelDType")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
        self.engine_args = dict(engine_args, dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization)
        self.logprobs_mode = mode
        self.max_logprobs = engine_args.get("max_logprobs", 20)
        self.limit_mm_per_prompt = dict(engine_args.get("limit_mm_per_prompt") or {})
        self.mm_processor_kwargs = dict(mm_processor_kwargs or {})
        self.processor = AutoProcessor.from_pretrained(model)
        hf_model = AutoModelForImageTextToText.from_pretrained(model, dtype=torch.float32).eval()
        self.config = hf_model.config
        self.vocab_size = self.config.get_text_config().vocab_size
        extension = engine_args.get("worker_extension_cls") or ""
        bases = (_Worker, _qualname(extension)) if extension else (_Worker,)
        self.worker = type("Worker", bases, {})(_Model(hf_model))
        self.calls: list[tuple] = []
        self._requests = 0

    # -- the offline API ----------------------------------------------------------------------
    def get_tokenizer(self) -> Any:
        return self.processor.tokenizer

    def generate(self, prompts: Any, sampling_params: Any = None, *, use_tqdm: Any = True,
                 **kwargs: Any) -> list[RequestOutput]:
        prompts = prompts if isinstance(prompts, (list, tuple)) else [prompts]
        if sampling_params is None:
            sampling_params = SamplingParams()
        params = list(sampling_params) if isinstance(sampling_params, (list, tuple)) else [sampling_params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        self.calls.append(("generate", prompts, params))
        for p in params:
            self._validate(p)
        inputs = [self._process(prompt) for prompt in prompts]  # vLLM processes every request before running any
        outputs = []
        for (ids, video), p in zip(inputs, params):
            self._requests += 1
            generator = self._generator(p.seed)
            completions = [self._sample(index, ids, video, p, generator) for index in range(p.n)]
            outputs.append(RequestOutput(str(self._requests - 1), None, ids, None, completions, True))
        return outputs

    def collective_rpc(self, method: str | Callable, timeout: Optional[float] = None, args: tuple = (),
                       kwargs: Optional[dict] = None) -> list:
        self.calls.append(("collective_rpc", method, args))
        call = getattr(self.worker, method) if isinstance(method, str) else (lambda *a, **k: method(self.worker, *a, **k))
        return [call(*args, **(kwargs or {}))]

    def reset_prefix_cache(self, reset_running_requests: bool = False, reset_connector: bool = False) -> bool:
        self.calls.append(("reset_prefix_cache",))
        return True

    # -- request processing (vLLM's input processor and Qwen2.5-VL multimodal processor) --------
    def _validate(self, p: SamplingParams) -> None:
        if p.logprobs is not None and p.logprobs > self.max_logprobs:
            raise VLLMValidationError(f"Requested sample logprobs of {p.logprobs}, which is greater than max allowed: "
                                      f"{self.max_logprobs}")
        if p.allowed_token_ids is not None:
            if not p.allowed_token_ids:
                raise VLLMValidationError("allowed_token_ids is not None and empty!", parameter="allowed_token_ids")
            bad = [t for t in p.allowed_token_ids if t < 0 or t >= self.vocab_size]
            if bad:
                raise VLLMValidationError("allowed_token_ids contains out-of-vocab token id!",
                                          parameter="allowed_token_ids", value=bad)

    def _process(self, prompt: dict) -> tuple[list[int], Optional[dict]]:
        """(expanded prompt ids, model inputs of the video or None)."""
        import torch
        from transformers.video_utils import VideoMetadata

        if not isinstance(prompt, dict) or "prompt_token_ids" not in prompt:
            raise TypeError(f"this stand-in takes TokensPrompt dicts, got {type(prompt).__name__}")
        extra = set(prompt) - TOKENS_PROMPT_KEYS
        if extra:
            raise TypeError(f"TokensPrompt has no keys {sorted(extra)}")
        ids = [int(t) for t in prompt["prompt_token_ids"]]
        data = dict(prompt.get("multi_modal_data") or {})
        for modality, items in data.items():
            count = len(items) if isinstance(items, list) else 1
            limit = self.limit_mm_per_prompt.get(modality, 999)
            if count > limit:
                raise ValueError(f"At most {limit} {modality}(s) may be provided in one prompt.")
        if set(data) - {"video"}:
            raise NotImplementedError(f"this stand-in models videos only, got {sorted(data)}")
        video_token = self.processor.video_token_id
        placeholders = ids.count(video_token)
        if "video" not in data:
            return ids, None
        item = data["video"][0] if isinstance(data["video"], list) else data["video"]
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError("Video metadata is required but not found in mm input. "
                             "Please check your video input in `multi_modal_data`")
        frames, metadata = item
        if placeholders != 1:
            raise ValueError(f"Expected there to be 1 prompt updates corresponding to 1 video items, but instead "
                             f"found {placeholders} prompt updates!")
        video_metadata = VideoMetadata(**{k: v for k, v in metadata.items() if k != "do_sample_frames"})
        kwargs = dict(self.mm_processor_kwargs, **(prompt.get("mm_processor_kwargs") or {}))
        out = self.processor(text=[self.processor.video_token], videos=[frames], video_metadata=[video_metadata],
                             return_tensors="pt", **kwargs)
        expansion = out["input_ids"][0].tolist().count(video_token)
        at = ids.index(video_token)
        ids = ids[:at] + [video_token] * expansion + ids[at + 1:]
        video = {"pixel_values_videos": out["pixel_values_videos"], "video_grid_thw": out["video_grid_thw"],
                 "second_per_grid_ts": torch.as_tensor(out["second_per_grid_ts"], dtype=torch.float32)}
        return ids, video

    # -- sampling (v1's Sampler order) ------------------------------------------------------------
    @staticmethod
    def _generator(seed: Optional[int]) -> Any:
        import torch

        generator = torch.Generator()
        if seed is not None:
            generator.manual_seed(seed)
        else:
            generator.seed()
        return generator

    def _logits(self, ids: list[int], video: Optional[dict]) -> Any:
        import torch

        model = self.worker.model_runner.get_model().hf_model
        input_ids = torch.tensor([ids], dtype=torch.long)
        kwargs = dict(video or {})
        kwargs["mm_token_type_ids"] = (input_ids == self.processor.video_token_id).int() * 2
        with torch.no_grad():
            return model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs).logits[0, -1].float()

    def _sample(self, index: int, prompt_ids: list[int], video: Optional[dict], p: SamplingParams,
                generator: Any) -> CompletionOutput:
        import torch

        tokenizer = self.processor.tokenizer
        eos_id = self.config.get_text_config().eos_token_id
        eos = set() if p.ignore_eos or eos_id is None else set(eos_id if isinstance(eos_id, list) else [eos_id])
        stops = set(p.stop_token_ids) | eos
        tokens, logprobs, finish, stop_reason = [], [], "length", None
        for _ in range(p.max_tokens or 16):
            logits = self._logits(prompt_ids + tokens, video)
            raw = logits
            if p.allowed_token_ids is not None:
                keep = torch.full_like(logits, float("-inf"))
                keep[p.allowed_token_ids] = 0.0
                logits = logits + keep
            if p.temperature < _SAMPLING_EPS:
                token = int(torch.argmax(logits))
            else:
                logits = logits / p.temperature
                if p.top_p < 1.0:
                    ordered, order = torch.sort(torch.softmax(logits, dim=-1), descending=True)
                    drop = torch.cumsum(ordered, 0) - ordered > p.top_p
                    logits[order[drop]] = float("-inf")
                token = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator))
            reported = {"raw_logprobs": torch.log_softmax(raw, dim=-1), "raw_logits": raw,
                        "processed_logprobs": torch.log_softmax(logits, dim=-1),
                        "processed_logits": logits}[self.logprobs_mode]
            tokens.append(token)
            if p.logprobs is not None:
                entry = {token: Logprob(float(reported[token]), int((reported > reported[token]).sum()) + 1,
                                        tokenizer.decode([token]))}
                top = reported.topk(p.logprobs if p.logprobs != -1 else reported.numel())
                for rank, (value, top_id) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
                    entry.setdefault(top_id, Logprob(value, rank, tokenizer.decode([top_id])))
                logprobs.append(entry)
            if token in stops:
                finish, stop_reason = "stop", (token if token in p.stop_token_ids else None)
                break
        text = tokenizer.decode(tokens, skip_special_tokens=p.skip_special_tokens) if p.detokenize else ""
        cumulative = sum(e[t].logprob for e, t in zip(logprobs, tokens)) if p.logprobs is not None else None
        return CompletionOutput(index=index, text=text, token_ids=tokens, cumulative_logprob=cumulative,
                                logprobs=logprobs if p.logprobs is not None else None, finish_reason=finish,
                                stop_reason=stop_reason)


# vllm.inputs.TokensPrompt is a TypedDict: a plain dict at run time
TokensPrompt = dict
__all__ = ["LLM", "SamplingParams", "RequestOutput", "CompletionOutput", "Logprob", "TokensPrompt",
           "VLLMValidationError"]
