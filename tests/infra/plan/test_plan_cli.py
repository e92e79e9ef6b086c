"""`stvg plan`: the 7B preset fits its declared cluster, JSON carries the documented fields with
independently known values, what does not fit is named with fixes that really fix it, and bad
flags are one-line errors."""

from __future__ import annotations

import json

import pytest

from infra.cli import main

PRESET = "qwen25vl-7b-stvg-o1"
SEVEN_B_PARAMS = 8_292_166_656  # the meta-device count (test_plan_shapes), published as 8.29 B


def plan(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(capsys, *args: str) -> dict:
    code, out, err = plan(capsys, *args, "--json")
    assert code in (0, 1), err
    return json.loads(out)


def test_the_7b_preset_fits_its_own_cluster(capsys):
    code, out, _ = plan(capsys, PRESET)
    assert code == 0
    assert "Learner, per GPU: 8 ranks (ZeRO-3) on a100-40gb" in out
    assert "Rollout, per GPU: 8 vllm engines, one a100-40gb each" in out
    assert out.rstrip().endswith("Verdict: fits.")


def test_json_has_the_documented_fields_with_known_values(capsys):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    capsys.readouterr()  # importing deepspeed prints its accelerator warning
    data = plan_json(capsys, PRESET)
    learner, rollout = data["learner"], data["rollout"]
    assert data["fits"] is True and learner["fits"] and rollout["fits"]
    assert learner["params"] == SEVEN_B_PARAMS
    _, states, _ = estimate_zero3_model_states_mem_needs(SEVEN_B_PARAMS, 152_064 * 3_584, num_gpus_per_node=8,
                                                         num_nodes=1, cpu_offload=False)
    assert learner["model_states_bytes_per_gpu"] == states
    parts = ("model_states_bytes_per_gpu", "reference_bytes_per_gpu", "activation_bytes_per_gpu",
             "logits_bytes_per_gpu", "overhead_bytes_per_gpu")
    assert learner["total_bytes_per_gpu"] == sum(learner[k] for k in parts)
    assert learner["activation_bytes_per_gpu"] == learner["activation_bytes_per_gpu_checkpointed"]
    assert learner["total_bytes_per_gpu"] <= learner["budget_bytes_per_gpu"] == int(0.9 * 40 * 1024**3)
    # 64 frames of 336 x 336 (a real dataset: the worst case) -> 32 x 24 x 24 patches, 4 per token
    assert (rollout["frames"], rollout["frame_size"], rollout["video_grid"]) == (64, [336, 336], [32, 24, 24])
    assert rollout["video_tokens_per_prompt"] == 32 * 24 * 24 // 4 == 4608
    assert rollout["prompt_tokens"] == 4608 + rollout["text_tokens"] and not rollout["text_tokens_exact"]
    assert rollout["kv_bytes_per_token"] == 2 * 28 * 4 * 128 * 2
    assert rollout["max_sequences"] >= rollout["sequences_per_engine"] == 16 * 8 // 8
    assert data["step"]["total_seconds"] > 0 and data["problems"] == []


def test_flags_set_the_cluster_side(capsys):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    capsys.readouterr()
    data = plan_json(capsys, PRESET, "--gpu-type", "h100-80gb", "--nodes", "2", "--gpus-per-node", "4")
    assert (data["learner"]["ranks"], data["learner"]["gpu"], data["rollout"]["gpu"]) == (8, "h100-80gb", "h100-80gb")
    data = plan_json(capsys, PRESET, "--nodes", "2", "--gpu-memory-gib", "24")
    assert data["learner"]["ranks"] == 16 and data["learner"]["gpu_memory_bytes"] == 24 * 1024**3
    _, states, _ = estimate_zero3_model_states_mem_needs(SEVEN_B_PARAMS, 152_064 * 3_584, num_gpus_per_node=8,
                                                         num_nodes=2, cpu_offload=False)
    assert data["learner"]["model_states_bytes_per_gpu"] == states


def test_without_checkpointing_the_learner_does_not_fit_and_the_fix_is_named(capsys):
    code, out, _ = plan(capsys, PRESET, "learner.gradient_checkpointing=false")
    assert code == 1
    assert "Verdict: does NOT fit." in out
    assert "learner: a learner GPU needs" in out and "over the 36.0 GiB budget of a100-40gb" in out
    assert "fix: learner.gradient_checkpointing=true" in out


def _fixes(data: dict) -> list[list[str]]:
    """Each proposed fix's overrides (the key=value words before its figure)."""
    out = []
    for problem in data["problems"]:
        for fix in problem["fixes"]:
            words = fix.split(" (")[0].split()
            if all("=" in w for w in words):  # tensor parallelism is advice, not an override
                out.append(words)
    return out


@pytest.mark.parametrize("overrides", [
    ["learner.gradient_checkpointing=false", "learner.micro_batch_size=4"],
    ["learner.num_workers=2", "cluster.learner.gpus_per_worker=2"],
    ["rollout.gpu_memory_utilization=0.45"],
    ["rollout.max_prompt_tokens=4096"],
    ["rollout.engine=hf"],  # HF generate holds a whole request: 4 prompts x 8 rows
])
def test_every_proposed_fix_makes_the_run_fit(capsys, overrides):
    data = plan_json(capsys, PRESET, *overrides)
    assert data["fits"] is False
    fixes = _fixes(data)
    assert fixes, data["problems"]
    for fix in fixes:
        fixed = plan_json(capsys, PRESET, *overrides, *fix)
        assert fixed["fits"], (fix, fixed["problems"])


def test_a_72b_engine_on_one_a100_is_refused_with_tensor_parallelism_named(capsys):
    data = plan_json(capsys, PRESET, "--model-config", "qwen2.5-vl-72b", "learner.num_workers=64",
                     "cluster.learner.replicas=8")
    (rollout,) = [p for p in data["problems"] if p["part"] == "rollout"]
    assert "cannot hold one" in rollout["reason"]
    # 136.7 GiB of bf16 weights: no GPU in the table holds them at utilization 0.6; 8 GPUs do
    assert [f for f in rollout["fixes"] if f.startswith("tensor parallelism")] == [
        "tensor parallelism 8 (12 sequences per engine; not implemented by the vLLM engine yet: docs/plan.md)"]


@pytest.mark.parametrize("args,message", [
    (["--gpu-type", "b200"], "cluster.learner.gpu_type='b200' is not allowed"),
    (["--video-size", "1280"], "--video-size='1280' must look like 1280x720"),
    (["--nodes", "0"], "--nodes=0 and --gpus-per-node=8 must both be at least 1"),
    (["--margin", "1.5"], "--margin=1.5 must be in [0, 1)"),
    (["cluster.rollout.gpu_memory_gib=-1"], "cluster.rollout.gpu_memory_gib=-1"),
])
def test_bad_flags_are_one_line_errors(capsys, args, message):
    code, out, err = plan(capsys, PRESET, *args)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert message in err
