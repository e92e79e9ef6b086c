"""A plan as a table a person reads, as JSON (`stvg plan --json`), as one line (`stvg submit`) and
as MLflow params (the training driver)."""

from __future__ import annotations

from typing import Any

from infra.plan.verdict import gib


def to_json(plan: Any) -> dict[str, Any]:
    s, p, learner, rollout = plan.shapes, plan.prompt, plan.learner, plan.rollout
    memory = rollout.memory
    other = learner.other_activations
    with_ckpt, without_ckpt = (learner.activations, other) if learner.checkpointing else (other, learner.activations)
    return {
        "name": plan.name,
        "fits": plan.fits,
        "model": {"source": plan.model.where, "layers": s.text.layers, "hidden_size": s.text.hidden,
                  "vision_depth": s.vision.depth},
        "video": {"width": plan.video.width, "height": plan.video.height, "seconds": plan.video.seconds,
                  "fps": plan.video.fps, "origin": plan.video.origin},
        "learner": {
            "params": s.params, "params_language": s.text.params, "params_vision": s.vision.params,
            "largest_layer_params": s.largest_layer, "ranks": learner.ranks, "zero_stage": learner.zero_stage,
            "gpu": learner.gpu.spec.name if learner.gpu else None,
            "gpu_memory_bytes": learner.gpu.memory if learner.gpu else None,
            "micro_batch_size": learner.work.rows, "sequence_tokens": learner.work.sequence_tokens,
            "gradient_checkpointing": learner.checkpointing,
            "model_states_bytes_per_gpu": learner.model_states,
            "reference_bytes_per_gpu": learner.reference,
            "activation_bytes_per_gpu": learner.activations.peak,
            "activation_bytes_per_gpu_checkpointed": with_ckpt.peak,
            "activation_bytes_per_gpu_not_checkpointed": without_ckpt.peak,
            "logits_bytes_per_gpu": learner.logits,
            "overhead_bytes_per_gpu": learner.overhead,
            "total_bytes_per_gpu": learner.total,
            "budget_bytes_per_gpu": learner.budget if learner.gpu else None,
            "fits": learner.fits,
        },
        "rollout": {
            "engine": rollout.engine if memory else "hf (CPU)", "engines": rollout.engines,
            "gpu": rollout.gpu.spec.name if rollout.gpu else None,
            "frames": p.frames, "frame_size": list(p.frame_size), "video_grid": list(p.grid),
            "video_tokens_per_prompt": p.video_tokens, "text_tokens": p.text_tokens,
            "text_tokens_exact": p.text_exact, "prompt_tokens": p.tokens,
            "max_prompt_tokens": plan.max_prompt_tokens, "max_new_tokens": plan.completion_tokens,
            "max_model_len": rollout.max_model_len,
            "kv_bytes_per_token": memory.kv_bytes_per_token if memory else s.kv_bytes_per_token(),
            "weights_bytes_per_gpu": memory.weights if memory else None,
            "reserve_bytes_per_gpu": memory.reserve if memory else None,
            "kv_cache_bytes_per_gpu": memory.kv_cache if memory else None,
            "budget_bytes_per_gpu": memory.budget if memory else None,
            "gpu_memory_utilization": rollout.utilization,
            "max_sequences": memory.max_sequences if memory else None,
            "sequences_per_engine": rollout.sequences_per_engine,
            "fits": rollout.fits and plan.prompt_fits,
        },
        "step": None if plan.step is None else {
            "generation_seconds": plan.step.generation, "prefill_seconds": plan.step.prefill,
            "decode_seconds": plan.step.decode, "logprob_seconds": plan.step.logprob,
            "update_seconds": plan.step.update, "weight_sync_seconds": plan.step.weight_sync,
            "total_seconds": plan.step.total,
            "assumptions": {"mfu": plan.options.assume.mfu,
                            "bandwidth_efficiency": plan.options.assume.bandwidth_efficiency,
                            "network_gbps": plan.options.assume.network_gbps},
        },
        "problems": [{"part": q.part, "reason": q.reason, "fixes": q.fixes} for q in plan.problems],
    }


def one_line(plan: Any) -> str:
    """The verdict in one line: what does not fit and its first fix, or the headline figures."""
    if plan.problems:
        first = plan.problems[0]
        fix = f"; fix: {first.fixes[0]}" if first.fixes else ""
        more = f" (+{len(plan.problems) - 1} more)" if len(plan.problems) > 1 else ""
        return f"the run does not fit: {first.reason}{fix}{more}"
    parts = [f"fits: {plan.prompt.tokens}-token prompts"]
    if plan.learner.gpu:
        parts.append(f"learner {gib(plan.learner.total)} of {gib(plan.learner.budget)} per GPU")
    if plan.rollout.memory:
        parts.append(f"rollout {plan.rollout.memory.max_sequences} sequences per engine")
    return ", ".join(parts)


def summary(plan: Any) -> dict[str, Any]:
    """The headline figures as MLflow params (logged under plan.*)."""
    data = to_json(plan)
    learner, rollout = data["learner"], data["rollout"]
    out = {"fits": data["fits"], "model": data["model"]["source"],
           "learner": {k: learner[k] for k in ("params", "ranks", "gpu", "total_bytes_per_gpu",
                                               "model_states_bytes_per_gpu", "activation_bytes_per_gpu")},
           "rollout": {k: rollout[k] for k in ("video_tokens_per_prompt", "prompt_tokens", "kv_bytes_per_token",
                                               "max_sequences")},
           "problems": "; ".join(q.reason for q in plan.problems) or "none"}
    if data["step"]:
        out["step_seconds"] = round(data["step"]["total_seconds"], 1)
    return out


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def render(plan: Any) -> str:
    s, p, learner, rollout = plan.shapes, plan.prompt, plan.learner, plan.rollout
    lines = [f"stvg plan: {plan.name} | model: {plan.model.where}"]
    lines.append(f"  parameters          {_count(s.params)} (language {_count(s.text.params)}, vision "
                 f"{_count(s.vision.params)}; largest layer {_count(s.largest_layer)})")
    lines.append("")
    v = plan.video
    rate = f" at {v.fps:g} fps" if v.fps else ""
    lines.append(f"Prompt (video {v.width}x{v.height}, {v.seconds:g} s{rate}: {v.origin})")
    lines.append(f"  frames              {p.frames} of {p.frame_size[0]}x{p.frame_size[1]} -> grid {p.grid[0]}x{p.grid[1]}x"
                 f"{p.grid[2]} = {p.patches} patches")
    lines.append(f"  tokens              {p.tokens} = {p.video_tokens} video + {p.text_tokens} text "
                 f"({'tokenizer' if p.text_exact else 'estimated, no tokenizer here'}); limit "
                 f"rollout.max_prompt_tokens={plan.max_prompt_tokens}")
    lines.append("")
    lines += _learner_lines(plan)
    lines.append("")
    lines += _rollout_lines(plan)
    if plan.step is not None:
        a, t = plan.options.assume, plan.step
        lines.append("")
        lines.append(f"Step time (estimate: MFU {a.mfu:g}, {a.bandwidth_efficiency:g} of peak memory bandwidth, "
                     f"weight sync at {a.network_gbps:g} Gbit/s; {learner.gpu.spec.name} "
                     f"{learner.gpu.spec.bf16_tflops:g} TFLOP/s, {rollout.gpu.spec.name} "
                     f"{rollout.gpu.spec.memory_gbps:g} GB/s)")
        lines.append(f"  generation          {t.generation:8.1f} s  (prefill {t.prefill:.1f} s, decode {t.decode:.1f} s)")
        lines.append(f"  reference log-probs {t.logprob:8.1f} s")
        lines.append(f"  update              {t.update:8.1f} s")
        lines.append(f"  weight sync         {t.weight_sync:8.1f} s")
        how = "async: the next generation overlaps learning" if t.overlapped else "sync: generation, then learning"
        lines.append(f"  step                {t.total:8.1f} s  ({how}, then the weight sync)")
    lines.append("")
    if plan.fits:
        lines.append("Verdict: fits.")
    else:
        lines.append("Verdict: does NOT fit.")
        for q in plan.problems:
            lines.append(f"  {q.part}: {q.reason}")
            for fix in q.fixes:
                lines.append(f"    fix: {fix}")
            if not q.fixes:
                lines.append("    no single knob fixes it")
    return "\n".join(lines) + "\n"


def _learner_lines(plan: Any) -> list[str]:
    learner = plan.learner
    sharding = "ZeRO-3" if learner.zero_stage == 3 else "plain torch, full replicas"
    if learner.gpu is None:
        head = f"Learner: {_n(learner.ranks, 'CPU rank')} ({sharding}); no GPU to fit"
    else:
        head = (f"Learner, per GPU: {_n(learner.ranks, 'rank')} ({sharding}) on {learner.gpu.spec.name} "
                f"({learner.gpu.memory_gib:.1f} GiB)")
    w = learner.work
    other = learner.other_activations.peak
    lines = [head,
             f"  model states        {gib(learner.model_states):>10}  bf16 weights and gradients, fp32 master and Adam, "
             f"over {_n(learner.ranks, 'rank')} + largest layer gathered",
             f"  reference model     {gib(learner.reference):>10}  (grpo.kl_coef={'> 0' if learner.reference else '0'})",
             f"  activations         {gib(learner.activations.peak):>10}  micro-batch {w.rows} x {w.sequence_tokens} tokens, "
             f"checkpointing {'on' if learner.checkpointing else 'off'} (turned {'off' if learner.checkpointing else 'on'}: "
             f"{gib(other)})",
             f"  logits buffer       {gib(learner.logits):>10}  {w.rows} x {w.completion_tokens} completion tokens x "
             f"{plan.shapes.text.vocab} vocabulary",
             f"  CUDA, NCCL, buckets {gib(learner.overhead):>10}"]
    if learner.gpu is None:
        lines.append(f"  total               {gib(learner.total):>10}")
    else:
        verdict = "fits" if learner.fits else "DOES NOT FIT"
        lines.append(f"  total               {gib(learner.total):>10}  of {gib(learner.budget)} ({learner.gpu.memory_gib:.1f} "
                     f"GiB less {plan.options.margin:.0%} margin): {verdict}")
    return lines


def _rollout_lines(plan: Any) -> list[str]:
    rollout, memory = plan.rollout, plan.rollout.memory
    kv = memory.kv_bytes_per_token if memory else plan.shapes.kv_bytes_per_token()
    t = plan.shapes.text
    kv_line = (f"  KV cache per token  {f'{kv / 1024:.1f} KiB':>10}  2 x {t.layers} layers x {t.kv_heads} KV heads x "
               f"{t.head_dim} x 2 bytes")
    if memory is None:
        return [f"Rollout: {_n(rollout.engines, 'engine')} without GPUs (HF generate on CPU): not sized", kv_line]
    gpu = rollout.gpu
    lines = [f"Rollout, per GPU: {rollout.engines} {rollout.engine} engines, one {gpu.spec.name} each "
             f"({gpu.memory_gib:.1f} GiB)",
             f"  budget              {gib(memory.budget):>10}  "
             + (f"rollout.gpu_memory_utilization={rollout.utilization:g}" if rollout.engine == "vllm" else "the whole GPU"),
             f"  weights             {gib(memory.weights):>10}",
             f"  reserved            {gib(memory.reserve):>10}  activation peak, non-torch memory"
             + (", CUDA graphs" if rollout.engine == "vllm" else ""),
             f"  KV cache            {gib(memory.kv_cache):>10}",
             kv_line,
             f"  sequences at once   {memory.max_sequences:>10}  of {memory.sequence_tokens} tokens; a step sends "
             f"{rollout.sequences_per_engine} per engine (prompts_per_step x grpo.group_size / engines)"]
    if rollout.engine == "vllm":
        lines.append(f"  max_model_len       {rollout.max_model_len:>10}  needs {gib(rollout.max_model_len * kv)} of KV "
                     f"cache to start: {'ok' if rollout.starts else 'NOT MET'}")
    return lines

