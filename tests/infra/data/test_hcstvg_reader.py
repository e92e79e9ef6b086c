"""HC-STVG v1/v2 reader against small files in the real layouts, with hand-worked expectations."""

from __future__ import annotations

import logging

import pytest
from _data_helpers import write_json

from infra.data.readers import FORMATS, read_annotations
from infra.errors import DataError

V1 = {
    "55_vfjywN5CN0Y.mp4": {
        "bbox": [[120, 40, 80, 200], [122, 41, 80, 199], [125, 41, 81, 199]],
        "st_time": 8.93, "ed_time": 9.03, "img_num": 600,
        "caption": "The woman in red clothes turns in a circle and walks to the door.",
        "width": 640, "height": 360, "st_frame": 268,
    }
}
V2 = {
    "3_5MxjqHfkWFI.mkv": {
        "bbox": [[301, 52, 96, 270], [303, 52, 95, 271]],
        "st_time": 3.2, "ed_time": 3.28, "img_num": 500, "img_size": [360, 640], "st_frame": 80,
        "English": "The man in the black coat raises his hand and then sits down.",
    }
}


def test_hcstvg_v1_gives_fps_span_and_xyxy_boxes(tmp_path):
    path = write_json(tmp_path / "test.json", V1)
    [s] = read_annotations("hcstvg-v1", path)
    assert s.id == "55_vfjywN5CN0Y.mp4"
    assert s.fps == 30.0  # 600 frames / 20 s
    assert s.frame_count == 600 and (s.width, s.height) == (640, 360)
    assert s.span_frames == (268, 271)  # three boxes from st_frame, end exclusive
    assert s.span_seconds == (8.93, 9.03)
    assert s.boxes == {268: (120, 40, 200, 240), 269: (122, 41, 202, 240), 270: (125, 41, 206, 240)}
    assert s.query.startswith("The woman in red")
    assert s.segment == (0, 599)
    assert s.dataset == "hcstvg-v1" and s.tracks is None and s.sentence_type is None
    assert s.video == str(tmp_path.resolve() / "videos" / "55_vfjywN5CN0Y.mp4")


def test_hcstvg_v2_reads_english_and_img_size_as_height_width(tmp_path):
    [s] = read_annotations("hcstvg-v2", write_json(tmp_path / "valv2.json", V2))
    assert (s.width, s.height) == (640, 360)
    assert s.fps == 25.0
    assert s.span_frames == (80, 82)
    assert s.boxes == {80: (301, 52, 397, 322), 81: (303, 52, 398, 323)}
    assert s.query == "The man in the black coat raises his hand and then sits down."


def test_video_root_joins_local_folders_and_s3_prefixes(tmp_path):
    path = write_json(tmp_path / "valv2.json", V2)
    [s3] = read_annotations("hcstvg-v2", path, video_root="s3://bucket/hcstvg/videos/")
    assert s3.video == "s3://bucket/hcstvg/videos/3_5MxjqHfkWFI.mkv"
    [local] = read_annotations("hcstvg-v2", path, video_root=tmp_path / "vids")
    assert local.video == str(tmp_path / "vids" / "3_5MxjqHfkWFI.mkv")


def _broken(**changes):
    record = dict(V2["3_5MxjqHfkWFI.mkv"])
    for key, value in changes.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    return {"good.mkv": V2["3_5MxjqHfkWFI.mkv"], "bad.mkv": record}


@pytest.mark.parametrize("changes, field", [
    ({"st_frame": None}, "st_frame"),
    ({"img_num": "500"}, "img_num"),
    ({"bbox": [[1, 2, 3]]}, "bbox[0]"),
    ({"bbox": [[1, 2, 3, 4], [1, 2, -3, 4]]}, "bbox[1]"),
    ({"bbox": []}, "bbox"),
    ({"ed_time": 1.0}, "ed_time"),
    ({"img_size": [360]}, "img_size"),
    ({"English": None}, "English"),
])
def test_malformed_record_names_file_record_and_field(tmp_path, changes, field):
    path = write_json(tmp_path / "valv2.json", _broken(**changes))
    with pytest.raises(DataError) as err:
        read_annotations("hcstvg-v2", path)
    message = str(err.value)
    assert str(path) in message and "'bad.mkv'" in message and f"'{field}'" in message


def test_v2_file_read_as_v1_says_which_caption_field_it_has(tmp_path):
    with pytest.raises(DataError, match="'caption' is missing .*'English'"):
        read_annotations("hcstvg-v1", write_json(tmp_path / "valv2.json", V2))


def test_skip_invalid_keeps_good_records_and_warns_once_with_the_count(tmp_path, caplog):
    data = _broken(st_frame=None)
    data["also-bad.mkv"] = {"bbox": "nope"}
    path = write_json(tmp_path / "valv2.json", data)
    with caplog.at_level(logging.WARNING):
        samples = read_annotations("hcstvg-v2", path, skip_invalid=True)
    assert [s.id for s in samples] == ["good.mkv"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 2 invalid of 3 records" in warnings[0].getMessage()
    assert "'bad.mkv'" in warnings[0].getMessage()


@pytest.mark.parametrize("content", ["", "  \n", "{}", "[]", "{not json"])
def test_empty_or_wrong_files_raise(tmp_path, content):
    path = tmp_path / "a.json"
    path.write_text(content)
    with pytest.raises(DataError, match=str(path)):
        read_annotations("hcstvg-v1", path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_annotations("hcstvg-v2", tmp_path / "nope.json")


def test_unknown_format_lists_the_formats(tmp_path):
    with pytest.raises(DataError) as err:
        read_annotations("hcstvg-v3", tmp_path / "x.json")
    assert all(fmt in str(err.value) for fmt in FORMATS)
