"""`stvg score` on small annotation files in the real dataset formats, through the CLI entry point."""

import json

import pytest

from infra.cli import main

pytest.importorskip("infra.data.readers")


def hcstvg_v1(path):
    """Two 20 s videos at 10 fps (img_num 200); GT tube of a.mp4 = frames 100..149, box xywh (10, 20, 100, 50)."""
    record = {"bbox": [[10, 20, 100, 50]] * 50, "st_time": 10.0, "ed_time": 15.0, "img_num": 200,
              "caption": "the man in red walks.", "width": 640, "height": 360, "st_frame": 100}
    path.write_text(json.dumps({"a.mp4": record, "b.mp4": record}))
    return path


def jsonl(path, items):
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def test_scores_hcstvg_and_writes_json(tmp_path, capsys):
    annotations = hcstvg_v1(tmp_path / "test.json")
    preds = jsonl(tmp_path / "preds.jsonl", [{"id": "a.mp4", "t_start": 12.5, "t_end": 17.5,
                                              "boxes": [[12.5, 10, 20, 110, 70]]}])
    out = tmp_path / "metrics" / "m.json"
    assert main(["score", "--format", "hcstvg-v1", "--annotations", str(annotations), "--predictions", str(preds),
                 "--out", str(out)]) == 0
    # a.mp4: P = [125, 175), G = [100, 150): tIoU = 25 / 75. Evaluation frames 0, 2, ..., 198.
    # union [100, 175): 100..174 even = 38 frames; intersection [125, 150): 126..148 even = 12 frames, IoU 1
    # -> vIoU = 12/38 = 0.3158 (> 0.3, not > 0.5). b.mp4 has no prediction: 0.
    result = json.loads(out.read_text())
    assert result["aggregates"]["all"] == pytest.approx({"m_tIoU": 100 / 3 / 2, "m_vIoU": 100 * 12 / 38 / 2,
                                                         "vIoU@0.3": 50.0, "vIoU@0.5": 0.0})
    assert [(q["id"], q["predicted"]) for q in result["queries"]] == [("a.mp4", True), ("b.mp4", False)]
    printed = capsys.readouterr().out
    assert "m_tIoU" in printed and "16.67" in printed and "15.79" in printed
    assert "1 of 2 queries have no prediction" in printed


def test_scores_charades(tmp_path, capsys):
    annotations = tmp_path / "charades.txt"
    annotations.write_text("AO8RW 0.0 10.0##a person is putting a book on a shelf.\n"
                           "Y6R7T 12.0 20.0##person opens the door.\n")
    preds = jsonl(tmp_path / "p.jsonl", [{"id": "AO8RW#1", "t_start": 0.0, "t_end": 5.0},
                                         {"id": "Y6R7T#2", "t_start": 12.0, "t_end": 16.0, "boxes": []}])
    assert main(["score", "--format", "charades", "--annotations", str(annotations), "--predictions", str(preds)]) == 0
    # tIoU 0.5 and 0.5: R1@0.3 100, R1@0.5 100 (inclusive), R1@0.7 0, mIoU 50
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("all")][0]
    assert line.split() == ["all", "2", "2", "100.00", "100.00", "0.00", "50.00"]


@pytest.mark.parametrize("lines,needle", [
    (['{"id": "a.mp4", "t_start": 1, "t_end": 2}', '{"id": "a.mp4", "t_start": 1}'], "line 2: missing field 't_end'"),
    (['', '{"id": "zz.mp4", "t_start": 1, "t_end": 2}'], "line 2: id 'zz.mp4' matches no annotated query"),
    (['{"id": "a.mp4", "t_start": 1, "t_end": 2, "boxes": [[1, 2, 3]]}'], "line 1: field 'boxes[0]' must be"),
    (['{"id": "a.mp4", "t_start": 1, "t_end": 2', ], "line 1: not valid JSON"),
])
def test_bad_prediction_lines_are_one_line_errors(tmp_path, capsys, lines, needle):
    annotations = hcstvg_v1(tmp_path / "test.json")
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    assert main(["score", "--format", "hcstvg-v1", "--annotations", str(annotations), "--predictions", str(preds)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "p.jsonl" in err


def test_missing_prediction_file_is_an_error(tmp_path, capsys):
    annotations = hcstvg_v1(tmp_path / "test.json")
    assert main(["score", "--format", "hcstvg-v1", "--annotations", str(annotations),
                 "--predictions", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_scores_vidstg_per_sentence_type_with_trajectories(tmp_path, capsys):
    # 10 fps, 40 frames, used_segment [0, 40), temporal_gt [10, 20); tid 2 has box (0, 0, 10, 10) on every frame
    record = {"vid": "v1", "fps": 10.0, "frame_count": 40, "width": 100, "height": 100,
              "used_segment": {"begin_fid": 0, "end_fid": 40}, "temporal_gt": {"begin_fid": 10, "end_fid": 20},
              "subject/objects": [{"tid": 2, "category": "child"}],
              "captions": [{"description": "the child runs.", "type": "person", "target_id": 2}],
              "questions": [{"description": "who runs?", "type": "person", "target_id": 2}]}
    annotations = tmp_path / "val_annotations.json"
    annotations.write_text(json.dumps([record]))
    trajectories = tmp_path / "vidor"
    trajectories.mkdir()
    box = {"tid": 2, "bbox": {"xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10}}
    (trajectories / "v1.json").write_text(json.dumps({"trajectories": [[box]] * 40}))
    preds = jsonl(tmp_path / "p.jsonl", [{"id": "v1_0_caption0", "t_start": 1.0, "t_end": 2.0,
                                          "boxes": [[1.0, 0, 0, 10, 10]]}])
    out = tmp_path / "m.json"
    assert main(["score", "--format", "vidstg", "--annotations", str(annotations), "--predictions", str(preds),
                 "--trajectories", str(trajectories), "--out", str(out)]) == 0
    aggregates = json.loads(out.read_text())["aggregates"]
    # the caption is predicted exactly (tIoU 1, vIoU 1), the question not at all
    assert aggregates["declarative"] == {"m_tIoU": 100.0, "m_vIoU": 100.0, "vIoU@0.3": 100.0, "vIoU@0.5": 100.0}
    assert aggregates["interrogative"] == {"m_tIoU": 0.0, "m_vIoU": 0.0, "vIoU@0.3": 0.0, "vIoU@0.5": 0.0}
