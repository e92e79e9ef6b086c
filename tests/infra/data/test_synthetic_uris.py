"""synthetic:// video URIs: a synthetic split is named by its generator settings, and any node
resolves its videos by generating the split once in its own cache, byte-identical to the driver's."""

from __future__ import annotations

import pytest

from infra.data.synth import SceneOptions, SyntheticSettings, load_synthetic_split, synthetic_video
from infra.errors import UserError
from rollout.video_cache import VideoCache

SETTINGS = SyntheticSettings(videos=3, seed=7, width=96, height=64, fps=2.5)


def test_settings_round_trip_through_their_key():
    assert SETTINGS.key == "videos3-seed7-w96-h64-fps2.5"
    assert SyntheticSettings.from_key(SETTINGS.key) == SETTINGS
    with pytest.raises(UserError, match="not a synthetic dataset key"):
        SyntheticSettings.from_key("videos3-seed7")


def test_scene_options_are_part_of_the_key_so_other_nodes_regenerate_the_same_scenes(tmp_path):
    one_shape = SyntheticSettings(videos=2, seed=7, width=96, height=64, fps=2.5,
                                  scene=SceneOptions(objects=(1, 1), object_size=(0.25, 0.35), target_span=(0.15, 0.15)))
    assert one_shape.key == "videos2-seed7-w96-h64-fps2.5-objects1_1-size0.25_0.35-span0.15_0.15"
    assert SyntheticSettings.from_key(one_shape.key) == one_shape
    samples = load_synthetic_split(one_shape, tmp_path / "driver")
    node_copy = synthetic_video(samples[0].video, tmp_path / "node")
    assert node_copy.read_bytes() == (tmp_path / "driver" / one_shape.key / "videos" / node_copy.name).read_bytes()
    assert SETTINGS.key != SyntheticSettings(3, 7, 96, 64, 2.5, SceneOptions(objects=(1, 1))).key
    coded = SyntheticSettings(3, 7, 96, 64, 2.5, SceneOptions(background="coded"))
    assert coded.key == "videos3-seed7-w96-h64-fps2.5-objects2_4-size0.12_0.2-span0.2_0.6-bgcoded"
    assert SyntheticSettings.from_key(coded.key) == coded


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
