"""synthetic:// video URIs: a synthetic split is named by its generator settings, and any node
resolves its videos by generating the split once in its own cache, byte-identical to the driver's."""

from __future__ import annotations

import pytest

from infra.data.synth import SyntheticSettings, load_synthetic_split, synthetic_video
from infra.errors import UserError
from rollout.video_cache import VideoCache

SETTINGS = SyntheticSettings(videos=3, seed=7, width=96, height=64, fps=2.5)


def test_settings_round_trip_through_their_key():
    assert SETTINGS.key == "videos3-seed7-w96-h64-fps2.5"
    assert SyntheticSettings.from_key(SETTINGS.key) == SETTINGS
    with pytest.raises(UserError, match="not a synthetic dataset key"):
        SyntheticSettings.from_key("videos3-seed7")


def test_another_node_regenerates_the_same_bytes_from_the_uri_alone(tmp_path):
    samples = load_synthetic_split(SETTINGS, tmp_path / "driver")
    assert [s.video for s in samples] == [f"synthetic://{SETTINGS.key}/videos/synth-s7-{i:05d}.mp4" for i in range(3)]
    node = VideoCache(tmp_path / "node-cache")
    for sample in samples:
        local = node.local_path(sample.video)
        assert local.startswith(str(tmp_path / "node-cache" / "synthetic"))
        driver_copy = tmp_path / "driver" / SETTINGS.key / "videos" / sample.video.rsplit("/", 1)[1]
        assert open(local, "rb").read() == driver_copy.read_bytes()
    assert node.downloads == 0


def test_a_malformed_synthetic_uri_names_the_expected_shape(tmp_path):
    with pytest.raises(UserError, match=r"looks like synthetic://<key>/videos/<name>"):
        synthetic_video(f"synthetic://{SETTINGS.key}/annotations.json", tmp_path)
    with pytest.raises(UserError, match="has no video 'synth-s7-00099.mp4'"):
        synthetic_video(f"synthetic://{SETTINGS.key}/videos/synth-s7-00099.mp4", tmp_path)
