"""`stvg data synth` and `stvg data inspect` through the real CLI entry point."""

from __future__ import annotations

import json

from _data_helpers import write_json

from infra.cli import main


def test_synth_writes_videos_annotations_and_tracks(tmp_path, capsys):
    out = tmp_path / "train"
    assert main(["data", "synth", "--out", str(out), "--videos", "2", "--seed", "5", "--quiet"]) == 0
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["synth-s5-00000.mp4", "synth-s5-00001.mp4"]
    annotations = json.loads((out / "annotations.json").read_text())
    assert list(annotations) == ["synth-s5-00000.mp4", "synth-s5-00001.mp4"]
    assert set(json.loads((out / "tracks.json").read_text())) == set(annotations)
    assert "wrote 2 videos" in capsys.readouterr().out


def test_synth_with_an_odd_width_is_a_one_line_error(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path), "--videos", "1", "--width", "161"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--width" in err and "161" in err


def test_inspect_counts_samples_and_lists_problems(tmp_path, capsys):
    good = {"bbox": [[1, 2, 3, 4], [1, 2, 3, 4]], "st_time": 1.0, "ed_time": 1.4, "img_num": 100,
            "img_size": [120, 160], "st_frame": 5, "English": "the red square moving left"}
    path = write_json(tmp_path / "ann.json", {"a.mp4": good, "b.mp4": dict(good, st_frame=8),
                                              "bad.mp4": dict(good, st_frame=-1)})
    assert main(["data", "inspect", "--format", "hcstvg-v2", "--annotations", str(path)]) == 0
    out = capsys.readouterr().out
    assert "samples: 2" in out and "span frames: min 2.00, mean 2.00, max 2.00" in out
    assert "span seconds: min 0.40 s" in out
    assert "skipped 1 invalid of 3 records" in out and "'bad.mp4'" in out and "'st_frame'" in out
    assert "2 of 2 local videos are missing" in out


def test_inspect_of_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["data", "inspect", "--format", "charades", "--annotations", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "x.txt" in err and "does not exist" in err


def test_inspect_opens_every_video_and_lists_the_damaged_and_the_truncated_ones(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["data", "synth", "--out", str(out), "--videos", "4", "--seed", "3", "--quiet"]) == 0
    videos = sorted((out / "videos").iterdir())
    damaged, truncated = videos[1], videos[2]
    data = bytearray(damaged.read_bytes())
    data[2000:] = bytes(len(data) - 2000)  # overwritten from byte 2000
    damaged.write_bytes(bytes(data))
    truncated.write_bytes(truncated.read_bytes()[:15000])
    capsys.readouterr()

    assert main(["data", "inspect", "--format", "hcstvg-v2", "--annotations", str(out / "annotations.json")]) == 0
    report = capsys.readouterr().out
    assert "videos opened: 4 (container, stream, first and last frame), 2 failing" in report
    assert "problems: 2" in report
    problems = [line for line in report.splitlines() if line.startswith("  - ")]
    assert [line.split("'")[1] for line in problems] == [str(damaged), str(truncated)]
    assert all(str(video) not in report for video in (videos[0], videos[3]))

    assert main(["data", "inspect", "--format", "hcstvg-v2", "--annotations", str(out / "annotations.json"),
                 "--no-videos"]) == 0
    assert "problems: none" in capsys.readouterr().out


def test_synth_scene_options_reach_the_generator(tmp_path):
    out = tmp_path / "one"
    assert main(["data", "synth", "--out", str(out), "--videos", "2", "--seed", "1", "--objects", "1", "1",
                 "--target-span", "0.1", "0.1", "--quiet"]) == 0
    tracks = json.loads((out / "tracks.json").read_text())
    assert all(len(entry) == 2 for entry in tracks.values())  # target_id and the target's own track
    annotations = json.loads((out / "annotations.json").read_text())
    assert all(len(rec["bbox"]) == 10 for rec in annotations.values())  # 10 % of 100 frames
