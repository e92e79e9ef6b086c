"""VidSTG reader with VidOR trajectory files, on small files in the real layouts."""

from __future__ import annotations

import copy
import logging

import pytest
from _data_helpers import write_json

from infra.data.readers import read_annotations
from infra.errors import DataError

VID = "10712559773"


def _vidor(vid, frames, *, video_path=None):
    """A VidOR annotation file: tid 2 on frames 2..9 and tid 7 on frames 4..11 of 12."""
    trajectories = []
    for f in range(frames):
        entries = []
        if 2 <= f <= 9:
            entries.append({"tid": 2, "bbox": {"xmin": f, "ymin": 10, "xmax": f + 20, "ymax": 30},
                            "generated": 0, "tracker": "none"})
        if 4 <= f <= 11:
            entries.append({"tid": 7, "bbox": {"xmin": 30, "ymin": f, "xmax": 40, "ymax": f + 5},
                            "generated": 1, "tracker": "linear"})
        trajectories.append(entries)
    data = {"version": "VERSION 1.0", "video_id": vid, "frame_count": frames, "fps": 2.0, "width": 64,
            "height": 48, "subject/objects": [{"tid": 2, "category": "child"}, {"tid": 7, "category": "ball"}],
            "trajectories": trajectories, "relation_instances": []}
    if video_path:
        data["video_path"] = video_path
    return data


RECORD = {
    "vid": VID, "fps": 2.0, "frame_count": 12, "width": 64, "height": 48,
    "used_segment": {"begin_fid": 2, "end_fid": 11},
    "subject/objects": [{"tid": 2, "category": "child"}, {"tid": 7, "category": "ball"}],
    "used_relation": {"subject_tid": 2, "object_tid": 7, "predicate": "watch", "begin_fid": 4, "end_fid": 8},
    "temporal_gt": {"begin_fid": 4, "end_fid": 8},
    "captions": [{"description": "the child is watching the ball.", "type": "person", "target_id": 2}],
    "questions": [{"description": "who is watching the ball?", "type": "person", "target_id": 2},
                  {"description": "what does the child watch?", "type": "other", "target_id": 7}],
}


@pytest.fixture
def layout(tmp_path):
    """VidOR's folder layout: <trajectories>/<folder>/<vid>.json."""
    traj = tmp_path / "trajectories"
    (traj / "0001").mkdir(parents=True)
    write_json(traj / "0001" / f"{VID}.json", _vidor(VID, 12, video_path=f"0001/{VID}.mp4"))
    return tmp_path, traj


def test_one_sample_per_sentence_with_target_boxes_inside_temporal_gt(layout):
    root, traj = layout
    ann = write_json(root / "val_annotations.json", [RECORD])
    samples = read_annotations("vidstg", ann, trajectories_dir=traj, video_root="s3://b/vidor")
    assert [s.id for s in samples] == [f"{VID}_0_caption0", f"{VID}_0_question0", f"{VID}_0_question1"]
    assert [s.sentence_type for s in samples] == ["declarative", "interrogative", "interrogative"]
    assert [s.target_id for s in samples] == [2, 2, 7]
    caption, _, question = samples
    assert caption.span_frames == (4, 8)  # temporal_gt, end exclusive
    assert caption.span_seconds == (2.0, 4.0)  # 4 / 2 fps, 8 / 2 fps
    assert caption.eval_segment == (2, 11) and caption.segment == (2, 11)
    assert caption.boxes == {4: (4, 10, 24, 30), 5: (5, 10, 25, 30), 6: (6, 10, 26, 30), 7: (7, 10, 27, 30)}
    assert question.boxes == {4: (30, 4, 40, 9), 5: (30, 5, 40, 10), 6: (30, 6, 40, 11), 7: (30, 7, 40, 12)}
    assert caption.query == "the child is watching the ball."
    assert caption.video == f"s3://b/vidor/0001/{VID}.mp4"
    assert (caption.fps, caption.frame_count, caption.width, caption.height) == (2.0, 12, 64, 48)
    # tracks: every instance, frames inside used_segment [2, 11) only
    assert sorted(caption.tracks) == [2, 7]
    assert sorted(caption.tracks[2]) == list(range(2, 10))
    assert sorted(caption.tracks[7]) == list(range(4, 11))
    assert caption.tracks[7][10] == (30, 10, 40, 15)
    assert caption.dataset == "vidstg"


def test_flat_layout_and_frames_without_a_target_box(tmp_path):
    traj = tmp_path / "traj"
    traj.mkdir()
    write_json(traj / "555.json", _vidor("555", 12))  # no video_path field
    record = copy.deepcopy(RECORD)
    record.update(vid="555", used_segment={"begin_fid": 0, "end_fid": 12}, temporal_gt={"begin_fid": 0, "end_fid": 4})
    record["questions"] = []
    [s] = read_annotations("vidstg", write_json(tmp_path / "a.json", [record]), trajectories_dir=traj)
    assert s.id == "555_0_caption0"
    assert s.boxes == {2: (2, 10, 22, 30), 3: (3, 10, 23, 30)}  # tid 2 appears on frame 2
    assert s.span_frames == (0, 4)
    assert s.video == str(tmp_path.resolve() / "videos" / "555.mp4")


@pytest.mark.parametrize("change, field", [
    (lambda r: r.update(temporal_gt={"begin_fid": 1, "end_fid": 8}), "temporal_gt"),
    (lambda r: r.update(used_segment={"begin_fid": 2, "end_fid": 13}), "used_segment"),
    (lambda r: r["questions"][0].pop("description"), "questions[0].description"),
    (lambda r: r["captions"][0].update(target_id="2"), "captions[0].target_id"),
    (lambda r: r["captions"][0].update(target_id=5), "captions[0].target_id"),  # no such track
    (lambda r: r.pop("fps"), "fps"),
    (lambda r: r.update(captions=[], questions=[]), "captions"),
])
def test_malformed_record_names_file_record_and_field(layout, change, field):
    root, traj = layout
    bad = copy.deepcopy(RECORD)
    change(bad)
    ann = write_json(root / "val_annotations.json", [RECORD, bad])
    with pytest.raises(DataError) as err:
        read_annotations("vidstg", ann, trajectories_dir=traj)
    message = str(err.value)
    assert str(ann) in message and "record 1" in message and f"'{field}'" in message


def test_malformed_trajectory_names_both_files_and_the_field(layout):
    root, traj = layout
    data = _vidor(VID, 12)
    del data["trajectories"][3][0]["bbox"]["xmax"]
    path = write_json(traj / "0001" / f"{VID}.json", data)
    ann = write_json(root / "val_annotations.json", [RECORD])
    with pytest.raises(DataError) as err:
        read_annotations("vidstg", ann, trajectories_dir=traj)
    message = str(err.value)
    assert str(ann) in message and "record 0" in message and str(path) in message
    assert "'trajectories[3][0].bbox.xmax'" in message


def test_missing_trajectory_file_names_the_record_and_video(layout):
    root, traj = layout
    record = dict(RECORD, vid="999")
    with pytest.raises(DataError, match=r"record 0 \(vid '999'\): no trajectory file 999.json"):
        read_annotations("vidstg", write_json(root / "a.json", [record]), trajectories_dir=traj)


def test_skip_invalid_counts_bad_records(layout, caplog):
    root, traj = layout
    ann = write_json(root / "a.json", [RECORD, dict(RECORD, vid="999"), dict(RECORD, fps=0)])
    with caplog.at_level(logging.WARNING):
        samples = read_annotations("vidstg", ann, trajectories_dir=traj, skip_invalid=True)
    assert len(samples) == 3  # the three sentences of record 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 2 invalid of 3 records" in warnings[0]


def test_without_trajectories_samples_have_spans_but_no_boxes(layout, caplog):
    root, _ = layout
    with caplog.at_level(logging.WARNING):
        samples = read_annotations("vidstg", write_json(root / "a.json", [RECORD]))
    assert len(samples) == 3 and all(s.boxes == {} and s.tracks is None for s in samples)
    assert samples[0].span_frames == (4, 8) and samples[0].video.endswith(f"videos/{VID}.mp4")
    assert any("no boxes" in r.getMessage() for r in caplog.records)


def test_a_dict_is_not_a_vidstg_file(tmp_path):
    with pytest.raises(DataError, match="must hold a list"):
        read_annotations("vidstg", write_json(tmp_path / "a.json", {"x": RECORD}))
