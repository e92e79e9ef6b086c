"""Instance tracks files: parsing, attaching to samples by id or video name, errors."""

from __future__ import annotations

import logging

import pytest
from _data_helpers import write_json

from infra.data.readers import read_annotations
from infra.errors import DataError

HCSTVG = {
    "a.mp4": {"bbox": [[10, 20, 30, 40]], "st_time": 1.0, "ed_time": 1.2, "img_num": 100,
              "img_size": [120, 160], "st_frame": 5, "English": "the red square moving left"},
    "b.mp4": {"bbox": [[1, 2, 3, 4]], "st_time": 2.0, "ed_time": 2.2, "img_num": 100,
              "img_size": [120, 160], "st_frame": 10, "English": "the blue circle moving up"},
}


def test_tracks_attach_by_sample_id_and_by_video_stem(tmp_path):
    ann = write_json(tmp_path / "ann.json", HCSTVG)
    tracks = write_json(tmp_path / "tracks.json", {
        "a.mp4": {"target_id": 3, "3": {"5": [10, 20, 40, 60]}, "8": {"5": [0, 0, 5, 5], "6": [1, 1, 6, 6]}},
        "b": {"1": {"10": [1, 2, 4, 6]}},  # matched by the video's stem, no target given
    })
    a, b = read_annotations("hcstvg-v2", ann, tracks=tracks)
    assert a.tracks == {3: {5: (10, 20, 40, 60)}, 8: {5: (0, 0, 5, 5), 6: (1, 1, 6, 6)}}
    assert a.target_id == 3
    assert b.tracks == {1: {10: (1, 2, 4, 6)}} and b.target_id is None


def test_entries_matching_no_sample_are_reported(tmp_path, caplog):
    ann = write_json(tmp_path / "ann.json", HCSTVG)
    tracks = write_json(tmp_path / "tracks.json", {"zzz.mp4": {"1": {"0": [0, 0, 1, 1]}}})
    with caplog.at_level(logging.WARNING):
        samples = read_annotations("hcstvg-v2", ann, tracks=tracks)
    assert all(s.tracks is None for s in samples)
    assert any("1 of 1 entries" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("entry, field", [
    ({"x": {"0": [0, 0, 1, 1]}}, "x"),
    ({"1": {"0": [0, 0, 1]}}, "1.0"),
    ({"1": {"f": [0, 0, 1, 1]}}, "1.f"),
    ({"1": {"0": [5, 0, 1, 1]}}, "1.0"),
    ({"target_id": 4, "1": {"0": [0, 0, 1, 1]}}, "target_id"),
    ({"1": [[0, 0, 1, 1]]}, "1"),
])
def test_malformed_tracks_name_file_key_and_field(tmp_path, entry, field):
    ann = write_json(tmp_path / "ann.json", HCSTVG)
    tracks = write_json(tmp_path / "tracks.json", {"a.mp4": entry})
    with pytest.raises(DataError) as err:
        read_annotations("hcstvg-v2", ann, tracks=tracks)
    message = str(err.value)
    assert str(tracks) in message and "'a.mp4'" in message and f"'{field}'" in message
