"""Fixtures for rollout tests: a tiny Qwen2.5-VL checkpoint, real synthetic videos, a local Ray,
a moto S3 server on 127.0.0.1, and an independent log-prob computation to check engines against."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FRAMES = 8  # frames per prompt in these tests: 4 temporal grid steps, quick on CPU


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from rollout.models.tiny import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    from infra.data.synth import generate

    out = tmp_path_factory.mktemp("synthetic")
    generate(out, num_videos=6, seed=0, width=160, height=120, fps=5.0)
    return out


@pytest.fixture(scope="session")
def samples(synthetic_dir):
    from infra.data.synth import load_synthetic

    return load_synthetic(synthetic_dir)


@pytest.fixture(scope="session")
def family():
    from rollout.models import get_family

    return get_family("qwen2_5_vl")


@pytest.fixture(scope="session")
def processor(family, tiny_model):
    return family.load_processor(tiny_model)


@pytest.fixture(scope="session")
def settings():
    from rollout.prompting import PromptSettings

    return PromptSettings(task="stvg-o1", fps=2.0, max_frames=FRAMES, max_long_side=336, max_prompt_tokens=4096)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray per test module (2 CPUs, no dashboard)."""
    import ray

    from infra.loopback import init_local_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    init_local_ray(num_cpus=2, include_dashboard=False, resources={"stvg_rollout": 8}, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1 with fake credentials in the environment."""
    from tests.infra._servers import s3_server

    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint) -> str:
    """A new empty bucket on that server."""
    import uuid

    import boto3

    name = f"rollout-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _reference_logprobs(model, prompt, token_ids, temperature: float = 1.0, excluded=()) -> list[float]:
    """Log-probs of `token_ids` after `prompt` under softmax(logits / temperature), by one plain
    forward pass built here by hand from the PromptInputs fields (independent of the engines and of
    ModelFamily.model_inputs). `excluded` token ids get no mass (the distribution is renormalised
    over the others, as a sampler that blocks them reports it)."""
    import torch

    ids = torch.cat([prompt.input_ids, torch.tensor(token_ids, dtype=torch.long)]).unsqueeze(0)
    video_id = model.config.video_token_id
    mm_types = torch.where(ids == video_id, 2, 0).int()
    mm_types[0, prompt.input_ids.numel():] = 0
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=mm_types,
                       pixel_values_videos=prompt.pixel_values_videos, video_grid_thw=prompt.video_grid_thw,
                       second_per_grid_ts=torch.tensor([prompt.second_per_grid_ts])).logits[0]
    start = prompt.input_ids.numel() - 1
    steps = logits[start:start + len(token_ids)].double() / temperature
    steps[:, list(excluded)] = float("-inf")
    # log-softmax written out: logit - logsumexp
    picked = steps[torch.arange(len(token_ids)), torch.tensor(token_ids)]
    return (picked - torch.logsumexp(steps, dim=-1)).tolist()


def _load_reference_model(model_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model_dir), attn_implementation="eager").eval()


def _perturbed(model, seed: int):
    """`model` with seeded noise (std 0.05) added to every parameter, in place: new weights to push."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return model


class Reference:
    """Independent checks: `logprobs(model, prompt, ids)`, `load_model(dir)` (eager attention), and
    `perturbed(model, seed)` for weights that differ from the checkpoint's."""

    logprobs = staticmethod(_reference_logprobs)
    load_model = staticmethod(_load_reference_model)
    perturbed = staticmethod(_perturbed)


@pytest.fixture(scope="session")
def reference() -> type[Reference]:
    return Reference
