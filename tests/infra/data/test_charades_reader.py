"""Charades-STA reader: `video_id start end##sentence` lines, seconds only."""

from __future__ import annotations

import logging

import pytest

from infra.data.readers import read_annotations
from infra.errors import DataError


def _write(tmp_path, text):
    path = tmp_path / "charades_sta_test.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_become_seconds_only_samples_numbered_by_line(tmp_path):
    path = _write(tmp_path, "AO8RW 0.0 6.9##a person is putting a book on a shelf.\n\n"
                            "Y6R7T 12.1 19.8##person opens the door.\n")
    first, second = read_annotations("charades", path, video_root="s3://bucket/charades")
    assert first.id == "AO8RW#1" and second.id == "Y6R7T#3"  # physical line numbers; line 2 is blank
    assert first.span_seconds == (0.0, 6.9) and second.span_seconds == (12.1, 19.8)
    assert first.query == "a person is putting a book on a shelf."
    assert (first.fps, first.frame_count, first.span_frames, first.boxes) == (0.0, 0, (0, 0), {})
    assert first.video == "s3://bucket/charades/AO8RW.mp4"
    assert first.dataset == "charades" and first.duration == 0.0


@pytest.mark.parametrize("line, field", [
    ("AO8RW 0.0 6.9 a person", "sentence"),
    ("AO8RW 0.0 6.9##   ", "sentence"),
    ("AO8RW zero 6.9##a person", "start"),
    ("AO8RW 0.0 -1##a person", "end"),
    ("AO8RW 5.0 1.0##a person", "end"),
    ("AO8RW 0.0##a person", "video_id start end"),
])
def test_malformed_line_names_file_line_and_field(tmp_path, line, field):
    path = _write(tmp_path, f"Y6R7T 12.1 19.8##person opens the door.\n{line}\n")
    with pytest.raises(DataError) as err:
        read_annotations("charades", path)
    message = str(err.value)
    assert str(path) in message and "line 2" in message and f"'{field}'" in message


def test_skip_invalid_warns_with_the_count(tmp_path, caplog):
    path = _write(tmp_path, "A 0 1##x\nB nope 1##y\nC 1 2##z\n")
    with caplog.at_level(logging.WARNING):
        samples = read_annotations("charades", path, skip_invalid=True)
    assert [s.id for s in samples] == ["A#1", "C#3"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 1 invalid of 3 records" in warnings[0] and "line 2" in warnings[0]


def test_empty_file_raises(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        read_annotations("charades", _write(tmp_path, "\n\n"))


def test_only_invalid_lines_raise_even_when_skipping(tmp_path):
    with pytest.raises(DataError, match="all 1 records are invalid"):
        read_annotations("charades", _write(tmp_path, "garbage\n"), skip_invalid=True)
