"""What does not fit, why, and the knobs that fix it (each checked by planning the changed run).

A fix is a set of config overrides found by planning the run again with one knob moved as little as
needed (binary search on knobs where more is always better or worse). Tensor parallelism is named
with the degree that would fit, but the vLLM engine runs one GPU per engine today.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from infra.errors import ConfigError
from infra.plan.gpus import GPUS
from infra.plan.plan import make_plan, replace_keys
from infra.plan.rollout import GIB, vllm_memory

MAX_RANKS = 1024
MAX_UTILIZATION = 0.95


@dataclass(frozen=True)
class Problem:
    part: str
    """prompt, learner or rollout."""
    reason: str
    """One line: what does not fit, by how much."""
    fixes: list[str] = field(default_factory=list)
    """Overrides (`key=value ...`) that make this part fit, each with the figure it reaches."""


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def problems(cfg: Any, plan: Any) -> list[Problem]:
    out = []
    if not plan.prompt_fits:
        out.append(_prompt_problem(cfg, plan))
    if not plan.learner.fits:
        out.append(_learner_problem(cfg, plan))
    if not plan.rollout.fits:
        out.append(_rollout_problem(cfg, plan))
    return out


def _replan(cfg: Any, plan: Any, changes: dict[str, Any]) -> Optional[Any]:
    try:
        changed = replace_keys(cfg, changes)
    except ConfigError:
        return None
    return make_plan(changed, plan.options, source=plan.model, with_fixes=False)


def _fits(cfg: Any, plan: Any, part: str, changes: dict[str, Any]) -> Optional[Any]:
    """The plan with `changes` if its `part` then fits, else None."""
    changed = _replan(cfg, plan, changes)
    if changed is None:
        return None
    fits = changed.prompt_fits if part == "prompt" else getattr(changed, part).fits
    return changed if fits else None


def _largest(low: int, high: int, ok: Callable[[int], bool]) -> Optional[int]:
    """The largest x in [low, high] with ok(x), for ok true below some point and false above."""
    if high < low or not ok(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if ok(mid) else (low, mid - 1)
    return low


def _smallest(low: int, high: int, ok: Callable[[int], bool]) -> Optional[int]:
    if high < low or not ok(high):
        return None
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if ok(mid) else (mid + 1, high)
    return low


def _fewer_frames_or_pixels(cfg: Any, plan: Any, part: str, describe: Callable[[Any], str]) -> list[str]:
    fixes = []
    frames = _largest(1, plan.prompt.frames - 1,
                      lambda n: _fits(cfg, plan, part, {"rollout.max_frames": n}) is not None)
    if frames:
        fixes.append(f"rollout.max_frames={frames} ({describe(_replan(cfg, plan, {'rollout.max_frames': frames}))})")
    step = plan.shapes.vision.patch * plan.shapes.vision.merge
    sides = _largest(1, (cfg.rollout.max_long_side - 1) // step,
                     lambda k: _fits(cfg, plan, part, {"rollout.max_long_side": k * step}) is not None)
    if sides:
        changed = _replan(cfg, plan, {"rollout.max_long_side": sides * step})
        fixes.append(f"rollout.max_long_side={sides * step} ({describe(changed)})")
    return fixes


def _prompt_problem(cfg: Any, plan: Any) -> Problem:
    p = plan.prompt
    reason = (f"prompts of up to {p.tokens} tokens ({p.video_tokens} of video: {p.frames} frames of "
              f"{p.frame_size[0]}x{p.frame_size[1]}) exceed rollout.max_prompt_tokens={plan.max_prompt_tokens}, "
              "and a longer prompt ends the run")
    needed = math.ceil(p.tokens / 256) * 256
    fixes = [f"rollout.max_prompt_tokens={needed}"]
    fixes += _fewer_frames_or_pixels(cfg, plan, "prompt", lambda q: f"{q.prompt.tokens} tokens")
    return Problem("prompt", reason, fixes)


def _learner_problem(cfg: Any, plan: Any) -> Problem:
    learner = plan.learner
    gpu = learner.gpu
    reason = (f"a learner GPU needs {gib(learner.total)}, over the {gib(learner.budget)} budget of "
              f"{gpu.spec.name} ({gpu.memory_gib:.1f} GiB less {plan.options.margin:.0%})")

    def total(q: Any) -> str:
        return f"{gib(q.learner.total)} per GPU"

    # Switches that cost no memory come first; when one alone is not enough, the other knobs are
    # searched with it on, and a fix names both.
    lc = cfg.learner
    free = {}
    if not lc.gradient_checkpointing:
        free["learner.gradient_checkpointing"] = True
    if lc.attn_implementation == "eager":
        free["learner.attn_implementation"] = "auto"
    if free and (q := _fits(cfg, plan, "learner", free)):
        return Problem("learner", reason, [f"{_words(free)} ({total(q)})"])
    base = replace_keys(cfg, free) if free else cfg
    fixes = []
    rows = _largest(1, lc.micro_batch_size - 1,
                    lambda m: _fits(base, plan, "learner", {"learner.micro_batch_size": m}) is not None)
    if rows:
        change = {**free, "learner.micro_batch_size": rows}
        fixes.append(f"{_words(change)} ({total(_replan(cfg, plan, change))})")
    per_node = cfg.cluster.learner.gpus_per_worker or 1

    def nodes(n: int) -> dict[str, Any]:  # whole nodes, one rank per GPU
        return {"learner.num_workers": n * per_node, "cluster.learner.replicas": n,
                "cluster.learner.max_replicas": None, "cluster.learner.min_replicas": None}

    n = _smallest(math.ceil((lc.num_workers + 1) / per_node), MAX_RANKS // per_node,
                  lambda k: _fits(base, plan, "learner", nodes(k)) is not None)
    if n:
        change = {**free, **nodes(n)}
        fixes.append(f"{_words(free)} learner.num_workers={n * per_node} cluster.learner.replicas={n} "
                     f"({total(_replan(cfg, plan, change))})".lstrip())
    fixes += [f"{_words(free)} {fix}".lstrip() for fix in _bigger_gpu(base, plan, "learner", total)]
    fixes += [f"{_words(free)} {fix}".lstrip() for fix in _fewer_frames_or_pixels(base, plan, "learner", total)]
    return Problem("learner", reason, fixes)


def _words(changes: dict[str, Any]) -> str:
    return " ".join(f"{key}={str(value).lower() if isinstance(value, bool) else value}"
                    for key, value in changes.items())


def _bigger_gpu(cfg: Any, plan: Any, part: str, describe: Callable[[Any], str]) -> list[str]:
    current = getattr(plan, part).gpu.memory_gib
    for name in sorted(GPUS, key=lambda n: GPUS[n].memory_gib):
        if GPUS[name].memory_gib > current:
            changes = {f"cluster.{part}.gpu_type": name, f"cluster.{part}.gpu_memory_gib": 0.0}
            if q := _fits(cfg, plan, part, changes):
                return [f"cluster.{part}.gpu_type={name} ({describe(q)})"]
    return []


def _rollout_problem(cfg: Any, plan: Any) -> Problem:
    rollout = plan.rollout
    memory, gpu = rollout.memory, rollout.gpu
    rc = cfg.rollout

    def sequences(q: Any) -> str:
        return f"{q.rollout.memory.max_sequences} sequences per engine"

    if not rollout.free_for_engine:
        most = math.floor((gpu.memory - GIB // 2) / gpu.memory * 100) / 100
        return Problem("rollout", f"rollout.gpu_memory_utilization={rc.gpu_memory_utilization} asks vLLM for "
                                  f"{gib(memory.budget)} of a {gpu.memory_gib:.1f} GiB {gpu.spec.name}, which leaves "
                                  "nothing for the CUDA context", [f"rollout.gpu_memory_utilization={most}"])
    if memory.max_sequences < rollout.at_once:
        held = (f"one {memory.sequence_tokens}-token sequence" if rollout.at_once == 1 else
                f"a request's {rollout.at_once} rows of {memory.sequence_tokens} tokens")
        budget = (f"the whole {gpu.spec.name}" if rollout.engine == "hf"
                  else f"{rc.gpu_memory_utilization:g} x {gpu.memory_gib:.1f} GiB {gpu.spec.name}")
        reason = (f"a rollout GPU cannot hold {held}: {gib(memory.budget)} ({budget}) less {gib(memory.weights)} of "
                  f"weights and {gib(memory.reserve)} reserved leaves {gib(memory.kv_cache)} for the KV cache")
    else:
        reason = (f"vLLM will not start: its KV cache ({gib(memory.kv_cache)}) is smaller than one "
                  f"max_model_len={rollout.max_model_len} sequence (rollout.max_prompt_tokens + max_new_tokens, "
                  f"{gib(rollout.max_model_len * memory.kv_bytes_per_token)})")
    fixes = []
    if rollout.engine == "hf":
        rows = _largest(1, rc.prompts_per_request - 1,
                        lambda n: _fits(cfg, plan, "rollout", {"rollout.prompts_per_request": n}) is not None)
        if rows:
            q = _replan(cfg, plan, {"rollout.prompts_per_request": rows})
            fixes.append(f"rollout.prompts_per_request={rows} ({sequences(q)})")
    else:
        util = _smallest(math.floor(rc.gpu_memory_utilization * 100) + 1, int(MAX_UTILIZATION * 100),
                         lambda u: _fits(cfg, plan, "rollout", {"rollout.gpu_memory_utilization": u / 100}) is not None)
        if util:
            q = _replan(cfg, plan, {"rollout.gpu_memory_utilization": util / 100})
            fixes.append(f"rollout.gpu_memory_utilization={util / 100:g} ({sequences(q)})")
    if not rollout.starts and plan.prompt.tokens < rc.max_prompt_tokens:
        most = _largest(plan.prompt.tokens, rc.max_prompt_tokens - 1,
                        lambda m: _fits(cfg, plan, "rollout", {"rollout.max_prompt_tokens": m}) is not None)
        if most:
            q = _replan(cfg, plan, {"rollout.max_prompt_tokens": most})
            fixes.append(f"rollout.max_prompt_tokens={most} ({sequences(q)})")
    fixes += _bigger_gpu(cfg, plan, "rollout", sequences)
    for tp in (2, 4, 8) if rollout.engine == "vllm" else ():
        engine = vllm_memory(plan.shapes, gpu.memory_gib, rc.gpu_memory_utilization, memory.sequence_tokens,
                             2 if rc.dtype != "float32" else 4, tensor_parallel=tp)
        if engine.max_sequences >= 1 and engine.kv_cache >= rollout.max_model_len * engine.kv_bytes_per_token:
            fixes.append(f"tensor parallelism {tp} ({engine.max_sequences} sequences per engine; not implemented "
                         "by the vLLM engine yet: docs/plan.md)")
            break
    fixes += _fewer_frames_or_pixels(cfg, plan, "rollout", sequences)
    return Problem("rollout", reason, fixes)
