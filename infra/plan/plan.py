"""`make_plan(cfg)`: size a run from its config and its model's config.json, before it is queued.

The plan has three parts read top to bottom: the prompt (frames, video and text tokens), the
learner per GPU, the rollout engine per GPU; then the step time and the verdict (infra.plan.verdict:
what does not fit and the knob that fixes it). docs/plan.md gives every formula and its source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from infra.plan.gpus import GPUS, GpuSpec
from infra.plan.learner import (Activations, Workload, activations, logits_transient_bytes, model_state_bytes,
                                reference_bytes)
from infra.plan.prompt import PromptSize, VideoAssumption, assumed_video, size_prompt
from infra.plan.rollout import GIB, EngineMemory, hf_memory, vllm_memory
from infra.plan.shapes import ModelShapes, shapes_from_config
from infra.plan.source import ModelFiles, find_model
from infra.plan.timing import Assumptions, StepTime, step_time


@dataclass(frozen=True)
class PlanOptions:
    """What the plan assumes beyond the run config (`stvg plan` flags)."""

    video_size: Optional[tuple[int, int]] = None
    """(width, height) of the dataset's videos; None = the synthetic generator's, or the worst case
    (square at rollout.max_long_side) for real datasets (infra.plan.prompt.assumed_video)."""
    video_seconds: Optional[float] = None
    """Length of the dataset's videos; None = the synthetic generator's, or 60 s."""
    margin: float = 0.10
    """Fraction of each GPU's memory the plan keeps free (fragmentation, estimates' error)."""
    overhead_gib: float = 1.0
    """Per learner GPU: CUDA context, NCCL buffers and ZeRO-3 buckets, outside the itemised terms."""
    assume: Assumptions = Assumptions()
    model_config: str = ""
    """--model-config: a shipped config name or a config.json, instead of model.path's."""


@dataclass(frozen=True)
class Gpu:
    spec: GpuSpec
    memory_gib: float

    @classmethod
    def of(cls, group: Any) -> "Gpu":
        spec = GPUS[group.gpu_type]
        return cls(spec, group.gpu_memory_gib or spec.memory_gib)

    @property
    def memory(self) -> int:
        return int(self.memory_gib * GIB)


@dataclass
class LearnerPlan:
    ranks: int
    zero_stage: int
    checkpointing: bool
    work: Workload
    model_states: int
    reference: int
    activations: Activations
    other_activations: Activations
    """The same with activation checkpointing switched the other way, for the report."""
    logits_transient: int
    overhead: int
    gpu: Optional[Gpu]
    """None for CPU ranks: nothing to fit."""
    budget: int

    @property
    def logits(self) -> int:
        """The logits buffer: saved fp32 logits plus their transient copies."""
        return self.activations.logits + self.logits_transient

    @property
    def total(self) -> int:
        return self.model_states + self.reference + self.activations.peak + self.logits + self.overhead

    @property
    def fits(self) -> bool:
        return self.gpu is None or self.total <= self.budget


@dataclass
class RolloutPlan:
    engine: str
    engines: int
    sequences_per_engine: int
    max_model_len: int
    memory: Optional[EngineMemory]
    """None when the engines reserve no GPU (HF generate on CPU)."""
    gpu: Optional[Gpu]
    utilization: float
    at_once: int = 1
    """Sequences the engine must hold together: vLLM queues the rest (1); HF generate takes a whole
    request (rollout.prompts_per_request x grpo.group_size rows)."""

    @property
    def starts(self) -> bool:
        """vLLM refuses to start unless one max_model_len sequence fits its KV cache."""
        if self.memory is None or self.engine != "vllm":
            return True
        return self.memory.kv_cache >= self.max_model_len * self.memory.kv_bytes_per_token

    @property
    def fits(self) -> bool:
        return self.memory is None or (self.memory.max_sequences >= self.at_once and self.starts
                                       and self.free_for_engine)

    @property
    def free_for_engine(self) -> bool:
        """vLLM needs utilization x memory free when it starts (the CUDA context is not)."""
        return self.memory is None or self.engine != "vllm" or self.memory.budget <= self.gpu.memory - GIB // 2


@dataclass
class Plan:
    name: str
    model: ModelFiles
    shapes: ModelShapes
    video: VideoAssumption
    prompt: PromptSize
    max_prompt_tokens: int
    completion_tokens: int
    learner: LearnerPlan
    rollout: RolloutPlan
    step: Optional[StepTime]
    options: PlanOptions
    problems: list = field(default_factory=list)
    """infra.plan.verdict.Problem for each part that does not fit, with its fixes."""

    @property
    def prompt_fits(self) -> bool:
        return self.prompt.tokens <= self.max_prompt_tokens

    @property
    def fits(self) -> bool:
        return self.prompt_fits and self.learner.fits and self.rollout.fits


def make_plan(cfg: Any, options: PlanOptions = PlanOptions(), *, source: Optional[ModelFiles] = None,
              with_fixes: bool = True) -> Plan:
    """The plan of the run config `cfg` (a RunConfig). `source` reuses an already read model."""
    source = source or find_model(cfg.model.path, tiny_seed=cfg.model.tiny_seed, tiny_size=cfg.model.tiny_size,
                                  override=options.model_config)
    shapes = shapes_from_config(source.config, source.where)
    video = assumed_video(cfg, options.video_size, options.video_seconds)
    prompt = size_prompt(cfg.rollout, shapes.vision, video, source.tokenizer, cfg.task)
    completion = cfg.rollout.max_new_tokens
    plan = Plan(name=cfg.name, model=source, shapes=shapes, video=video, prompt=prompt,
                max_prompt_tokens=cfg.rollout.max_prompt_tokens, completion_tokens=completion,
                learner=_learner(cfg, shapes, prompt, options), rollout=_rollout(cfg, shapes, prompt),
                step=None, options=options)
    plan.step = _step(cfg, plan)
    if with_fixes:
        from infra.plan.verdict import problems

        plan.problems = problems(cfg, plan)
    return plan


def _learner(cfg: Any, shapes: ModelShapes, prompt: PromptSize, options: PlanOptions) -> LearnerPlan:
    lc = cfg.learner
    on_gpu = str(lc.use_gpu).lower() == "true" or (str(lc.use_gpu).lower() == "auto"
                                                   and cfg.cluster.learner.gpus_per_worker > 0)
    bf16 = str(lc.bf16).lower() != "false" if on_gpu else str(lc.bf16).lower() == "true"
    # prompts over max_prompt_tokens are refused before they reach the learner
    sequence = min(prompt.tokens, cfg.rollout.max_prompt_tokens) + cfg.rollout.max_new_tokens
    work = Workload(rows=lc.micro_batch_size, sequence_tokens=sequence,
                    completion_tokens=cfg.rollout.max_new_tokens, patches=prompt.patches,
                    frame_grid=(prompt.grid[1], prompt.grid[2]))
    attention = lc.attn_implementation
    gpu = Gpu.of(cfg.cluster.learner) if on_gpu else None
    return LearnerPlan(
        ranks=lc.num_workers, zero_stage=lc.zero_stage, checkpointing=lc.gradient_checkpointing, work=work,
        model_states=model_state_bytes(shapes.params, shapes.largest_layer, lc.num_workers, lc.zero_stage),
        reference=reference_bytes(shapes.params, lc.num_workers, lc.zero_stage, bf16) if cfg.grpo.kl_coef > 0 else 0,
        activations=activations(shapes, work, attention, lc.gradient_checkpointing),
        other_activations=activations(shapes, work, attention, not lc.gradient_checkpointing),
        logits_transient=logits_transient_bytes(shapes.text, work),
        overhead=int(options.overhead_gib * GIB) if on_gpu else 0, gpu=gpu,
        budget=int(gpu.memory * (1 - options.margin)) if gpu else 0)


def _rollout(cfg: Any, shapes: ModelShapes, prompt: PromptSize) -> RolloutPlan:
    rc = cfg.rollout
    engine = "hf" if rc.engine == "hf" else "vllm"
    sequences = -(-cfg.prompts_per_step * cfg.grpo.group_size // rc.num_workers)
    max_model_len = rc.max_prompt_tokens + rc.max_new_tokens
    on_gpu = rc.num_gpus_per_worker > 0 and cfg.cluster.rollout.gpus_per_worker > 0
    if not on_gpu:
        return RolloutPlan("hf", rc.num_workers, sequences, max_model_len, None, None, rc.gpu_memory_utilization)
    gpu = Gpu.of(cfg.cluster.rollout)
    sequence = min(prompt.tokens, rc.max_prompt_tokens) + rc.max_new_tokens
    dtype_bytes = 4 if rc.dtype == "float32" else 2
    if engine == "vllm":
        memory = vllm_memory(shapes, gpu.memory_gib, rc.gpu_memory_utilization, sequence, dtype_bytes)
        return RolloutPlan(engine, rc.num_workers, sequences, max_model_len, memory, gpu, rc.gpu_memory_utilization)
    rows = rc.prompts_per_request * cfg.grpo.group_size
    memory = hf_memory(shapes, gpu.memory_gib, rows, sequence, dtype_bytes)
    return RolloutPlan(engine, rc.num_workers, sequences, max_model_len, memory, gpu, rc.gpu_memory_utilization, rows)


def _step(cfg: Any, plan: Plan) -> Optional[StepTime]:
    learner, rollout = plan.learner, plan.rollout
    if learner.gpu is None or rollout.memory is None or not (learner.fits and rollout.fits):
        return None  # CPU parts, or a run that cannot start: the figures would mean nothing
    sync = cfg.rollout.weight_sync
    copies = cfg.cluster.rollout.replicas if sync == "object_store" else 1  # auto is collective on GPUs
    return step_time(
        shapes=plan.shapes, prompt=plan.prompt, completion=plan.completion_tokens, prompts=cfg.prompts_per_step,
        group=cfg.grpo.group_size, engines=rollout.engines, max_sequences=rollout.memory.max_sequences,
        kv_bytes_per_token=rollout.memory.kv_bytes_per_token, weight_bytes=rollout.memory.weights,
        ranks=learner.ranks, checkpointing=learner.checkpointing, reference=cfg.grpo.kl_coef > 0,
        asynchronous=cfg.mode == "async", rollout_gpu=rollout.gpu.spec, learner_gpu=learner.gpu.spec,
        sync_copies=max(1, copies), assume=plan.options.assume)


def replace_keys(cfg: Any, changes: dict[str, Any]) -> Any:
    """`cfg` with dotted keys replaced (each section re-validated), e.g. {"learner.micro_batch_size": 1}."""
    for key, value in changes.items():
        cfg = _replace(cfg, key.split("."), value)
    return cfg


def _replace(obj: Any, path: list[str], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    return dataclasses.replace(obj, **{path[0]: _replace(getattr(obj, path[0]), path[1:], value)})
