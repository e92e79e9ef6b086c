"""The rollout side's config: engine choice, pool shape, frame sampling, prompt budget, sampling.

The lead composes `RolloutConfig` into the run config under `rollout:`; every key below is then
overridable as `rollout.<key>=value`. Nothing downstream re-defaults these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from infra.config import check_choice, check_range
from infra.errors import ConfigError

ENGINES = ("auto", "hf", "vllm")
TASKS = ("stvg-o1", "stvg-r1", "vtg")
WEIGHT_SYNC = ("auto", "object_store", "collective")


@dataclass
class RolloutConfig:
    # -- engines and pool --------------------------------------------------------------------
    engine: str = "auto"
    """Generation engine: `hf` (transformers generate; CPU or GPU), `vllm` (GPU only), or `auto`
    (vllm when `import vllm` works and CUDA is available, else hf)."""
    model_family: str = "qwen2_5_vl"
    """Model family in `rollout.models.FAMILIES`: prompt building and model loading live there."""
    num_workers: int = 1
    """Rollout actors (Ray) in the pool; each holds one engine."""
    num_cpus_per_worker: float = 1.0
    """Ray `num_cpus` reserved by each rollout actor."""
    num_gpus_per_worker: float = 0.0
    """Ray `num_gpus` reserved by each rollout actor (1 on GPU nodes; 0 on CPU)."""
    resources_per_worker: dict[str, float] = field(default_factory=dict)
    """Extra Ray custom resources per actor, e.g. {stvg_rollout: 1} so that actors land on the
    rollout node group of a Kubernetes RayCluster. Empty by default."""
    max_inflight: int = 8
    """Most requests (each `prompts_per_request` prompts) waiting on the workers at once."""
    prompts_per_request: int = 1
    """Prompts sent to a worker in one call: 1 balances best on CPU; larger batches suit vLLM."""
    max_worker_restarts: int = 3
    """How many dead or hung rollout actors the pool replaces over its life before giving up."""
    worker_timeout_s: float = 600.0
    """Longest a started rollout actor may go without finishing anything it was asked (a generate
    request, a weight load, one weight bucket); past it the actor counts as hung and is killed and
    replaced. Also the bound of every wait of the collective weight sync."""
    worker_start_timeout_s: float = 1800.0
    """Longest a new rollout actor may take to answer its first call (loading the model, e.g. a
    vLLM engine fetching a 7B checkpoint and capturing CUDA graphs); past it, it counts as hung."""
    weight_sync: str = "auto"
    """How weights reach the workers: `object_store` (each bucket ray.put once, every worker loads
    them), `collective` (a torch process group from learner rank 0, built once and reused: NCCL on
    GPU, gloo on CPU), or `auto` (collective when CUDA is available, else object_store)."""
    weight_bucket_mb: int = 1024
    """Weights travel in buckets of at most this many MiB (a larger tensor alone): the learner
    gathers one bucket of its ZeRO-3 shards at a time, so the sender's peak extra memory is about
    one bucket, not the model."""
    dtype: str = "auto"
    """Engine weights dtype: auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16, float16."""
    gpu_memory_utilization: float = 0.6
    """vLLM only: fraction of GPU memory the engine may take (KV cache included)."""
    video_cache_bytes: int = 8 * 1024**3
    """Per-worker local cache for videos fetched from s3:// URIs, LRU by bytes."""
    video_cache_dir: Optional[str] = None
    """This node's video cache, shared by its processes (`stvg train` sets it to
    <model.cache_dir>/videos when unset); None outside a run = a temporary directory per worker."""
    prompt_cache_bytes: int = 1024**3
    """Per-worker memory for processed prompts (frames decoded and run through the processor), so
    a sample seen again skips both; least recently used evicted; 0 = build every prompt anew."""

    # -- prompts and frames --------------------------------------------------------------------
    task: str = "stvg-o1"
    """Output format the instruction asks for: stvg-o1 (time span + box chain of thought),
    stvg-r1 (numbered objects, target id + time range) or vtg (time range only)."""
    fps: float = 2.0
    """Frames sampled per second of video (STVG-o1 uses 2)."""
    max_frames: Optional[int] = 64
    """Most frames per video; longer videos are sampled more sparsely. None = no limit."""
    max_long_side: int = 336
    """Frames are resized so their long side is at most this many pixels (then to multiples of 28)."""
    max_prompt_tokens: int = 4096
    """A prompt (video tokens included) longer than this is an error, never truncated."""
    instruction: str = "paper"
    """Wording of the task instruction (rollout/prompts.py), the same for rollouts, SFT and
    evaluation: `paper` (the seed papers' texts; for real models), `compact` (one short sentence
    asking for the same output format; for tiny models, whose prompts it shortens ~4x), or a
    template: text holding {query} (optionally {width}, {height}, {frames}), or the path of a text
    file holding it, which is read here so the config carries the text to every worker."""

    # -- sampling ------------------------------------------------------------------------------
    temperature: float = 1.0
    """Sampling temperature (GRPO wants diverse groups: 1.0)."""
    top_p: float = 1.0
    """Nucleus sampling mass; 1.0 disables it."""
    max_new_tokens: int = 256
    """Longest completion; longer ones stop with finish_reason 'length'."""

    def __post_init__(self) -> None:
        check_choice("rollout.engine", self.engine, ENGINES)
        check_choice("rollout.task", self.task, TASKS)
        check_choice("rollout.weight_sync", self.weight_sync, WEIGHT_SYNC)
        check_choice("rollout.dtype", self.dtype, ("auto", "float32", "bfloat16", "float16"))
        check_range("rollout.num_workers", self.num_workers, 1)
        check_range("rollout.num_cpus_per_worker", self.num_cpus_per_worker, 0)
        check_range("rollout.num_gpus_per_worker", self.num_gpus_per_worker, 0)
        check_range("rollout.max_inflight", self.max_inflight, 1)
        check_range("rollout.prompts_per_request", self.prompts_per_request, 1)
        check_range("rollout.max_worker_restarts", self.max_worker_restarts, 0)
        check_range("rollout.worker_timeout_s", self.worker_timeout_s, 0, low_open=True)
        check_range("rollout.worker_start_timeout_s", self.worker_start_timeout_s, 0, low_open=True)
        check_range("rollout.weight_bucket_mb", self.weight_bucket_mb, 1)
        check_range("rollout.gpu_memory_utilization", self.gpu_memory_utilization, 0, 1, low_open=True)
        check_range("rollout.video_cache_bytes", self.video_cache_bytes, 0, low_open=True)
        check_range("rollout.prompt_cache_bytes", self.prompt_cache_bytes, 0)
        check_range("rollout.fps", self.fps, 0, low_open=True)
        if self.max_frames is not None:
            check_range("rollout.max_frames", self.max_frames, 1)
        check_range("rollout.max_long_side", self.max_long_side, 28)
        check_range("rollout.max_prompt_tokens", self.max_prompt_tokens, 1)
        self.instruction = _instruction_text(self.instruction)
        check_range("rollout.temperature", self.temperature, 0, low_open=True)
        check_range("rollout.top_p", self.top_p, 0, 1, low_open=True)
        check_range("rollout.max_new_tokens", self.max_new_tokens, 1)
        for key, value in self.resources_per_worker.items():
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"rollout.resources_per_worker.{key}={value!r} must be a number >= 0")
        # The family registry is imported lazily so that configs load without torch.
        from rollout.models import FAMILY_NAMES

        check_choice("rollout.model_family", self.model_family, FAMILY_NAMES)

    @property
    def weight_bucket_bytes(self) -> int:
        return self.weight_bucket_mb * 1024**2


def _instruction_text(value: str) -> str:
    """rollout.instruction as used: a style name, or a template's text (a file's, read once)."""
    from pathlib import Path

    from rollout.prompts import STYLES, check_template

    if value in STYLES:
        return value
    if "{query}" not in value:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"rollout.instruction={value!r} is neither a style ({', '.join(STYLES)}), nor a "
                              "template holding {query}, nor a readable template file")
        value = path.read_text(encoding="utf-8")
    try:
        check_template(value)
    except ValueError as err:
        raise ConfigError(f"rollout.instruction: the template {err}") from None
    return value
