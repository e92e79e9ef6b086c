"""RolloutWorker in-process: S3 videos end to end, versions stamped, object-store weight format."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import torch

from rollout.config import RolloutConfig
from rollout.engines import SamplingConfig
from rollout.weight_sync import pack_bucket, unpack_bucket
from rollout.worker import PromptRequest, RolloutWorker


def test_worker_reads_s3_videos_once_and_stamps_its_policy_version(s3_endpoint, samples, tiny_model, tmp_path):
    import boto3

    bucket = f"train-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(samples[0].video, bucket, "videos/a.mp4")
    remote = dataclasses.replace(samples[0], video=f"s3://{bucket}/videos/a.mp4")
    config = RolloutConfig(engine="hf", max_frames=8, video_cache_dir=str(tmp_path / "cache"))
    worker = RolloutWorker(str(tiny_model), config)
    sampling = SamplingConfig(max_new_tokens=6, seed=0)
    first = worker.generate([PromptRequest(remote, "g0", 0), PromptRequest(remote, "g1", 1)], 2, sampling)
    assert [r.prompt_index for r in first] == [0, 1]
    assert [[c.group_id for c in r.completions] for r in first] == [["g0", "g0"], ["g1", "g1"]]
    assert first[0].prompt.extra["video"] == remote.video
    assert worker.stats()["video_downloads"] == 1
    # the same video from a local path gives the same model inputs
    local = worker.generate([PromptRequest(samples[0], "g2", 0)], 1, sampling)[0]
    assert torch.equal(local.prompt.pixel_values_videos, first[0].prompt.pixel_values_videos)

    state = {k: v + 0.01 for k, v in worker.engine.model.state_dict().items()}
    assert worker.update_weights(list(state.items()), 4) == 4
    again = worker.generate([PromptRequest(remote, "g3", 0)], 2, sampling)[0]
    assert all(c.policy_version == 4 for c in again.completions)
    assert worker.stats()["video_downloads"] == 1
    assert torch.equal(worker.engine.model.lm_head.weight, state["lm_head.weight"])


def test_packed_state_round_trips_float32_and_bfloat16_bit_exactly():
    generator = torch.Generator().manual_seed(0)
    state = {"a": torch.randn(3, 4, generator=generator), "b": torch.randn(5, generator=generator).bfloat16(),
             "c": torch.arange(6, dtype=torch.int64).reshape(2, 3)}
    packed = pack_bucket(state.items())
    assert all(isinstance(array, np.ndarray) for _, array in packed.values())
    restored = dict(unpack_bucket(packed))
    for name, tensor in state.items():
        assert restored[name].dtype == tensor.dtype
        assert torch.equal(restored[name], tensor)


def _damaged_copy(sample, folder):
    """The sample with its video overwritten from byte 2000 (the container no longer opens)."""
    path = folder / f"damaged-{sample.id}"
    data = bytearray(open(sample.video, "rb").read())
    data[2000:] = bytes(len(data) - 2000)
    path.write_bytes(bytes(data))
    return dataclasses.replace(sample, video=str(path))


def test_a_damaged_video_fails_only_its_own_prompt_of_a_request(samples, tiny_model, tmp_path):
    from infra.errors import VideoError

    damaged = _damaged_copy(samples[1], tmp_path)
    worker = RolloutWorker(str(tiny_model), RolloutConfig(engine="hf", max_frames=8))
    requests = [PromptRequest(samples[0], "g0", 0), PromptRequest(damaged, "g1", 1), PromptRequest(samples[2], "g2", 2)]
    results = {r.prompt_index: r for r in worker.generate(requests, 2, SamplingConfig(max_new_tokens=4, seed=0))}
    assert sorted(results) == [0, 1, 2]
    assert isinstance(results[1].error, VideoError) and results[1].error.video == damaged.video
    assert results[1].prompt is None and results[1].completions == []
    for index in (0, 2):
        assert results[index].error is None
        assert results[index].prompt.sample_id == samples[index].id
        assert [c.group_id for c in results[index].completions] == [f"g{index}"] * 2
