"""`stvg reward` through the real CLI entry point (and once as a subprocess)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli import main

O1_TARGET = {"t_start": 2, "t_end": 3, "boxes": [[2, 0, 0, 10, 10], [3, 0, 0, 10, 10]], "width": 100, "height": 100}
O1_GOOD = ("<time> 2 - 3 </time> <think_bbox> 2. [0, 0, 10, 10], 3. [0, 0, 10, 10] </think_bbox> "
           "<pred_bbox> 2. [0, 0, 10, 10], 3. [0, 0, 10, 10] </pred_bbox>")


def write_lines(path, items):
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items))
    return path


def test_scores_one_line_per_input_with_terms_in_order(tmp_path, capsys):
    runaway = O1_GOOD + " " * 100_000  # over rewards.parsing.MAX_COMPLETION_CHARS
    path = write_lines(tmp_path / "in.jsonl", [{"completion": O1_GOOD, "target": O1_TARGET}, "",
                                               {"completion": "nonsense", "target": O1_TARGET},
                                               {"completion": runaway, "target": O1_TARGET}])
    assert main(["reward", "--task", "stvg-o1", "--input", str(path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    assert list(lines[0]) == ["total", "format", "consistency", "temporal", "spatial", "think", "parsed", "runaway"]
    # 1 + 1 + 1 + (1 + 1) + 0.5 * 0
    assert lines[0]["total"] == pytest.approx(5.0) and lines[0]["parsed"] is True and lines[0]["runaway"] is False
    zeros = {"total": 0.0, "format": 0.0, "consistency": 0.0, "temporal": 0.0, "spatial": 0.0, "think": 0.0}
    assert lines[1] == {**zeros, "parsed": False, "runaway": False}
    assert lines[2] == {**zeros, "parsed": False, "runaway": True}


def test_weights_and_out_file(tmp_path):
    item = {"completion": "<think>x</think><answer>Target ID: 1, Time range: 0 to 5</answer>",
            "target": {"t_start": 0, "t_end": 10, "instance_id": 2}}
    path = write_lines(tmp_path / "in.jsonl", [item])
    out = tmp_path / "scores.jsonl"
    assert main(["reward", "--task", "stvg-r1", "--input", str(path), "--out", str(out),
                 "--weights", "tiou=2", "format=0.5"]) == 0
    [line] = [json.loads(x) for x in out.read_text().splitlines()]
    # tIoU 5/10 = 0.5, id 0 -> total 2 * 0.5 + 0 + 0.5 * 1
    assert line == {"total": 1.5, "tiou": 0.5, "id": 0.0, "format": 1.0, "parsed": True, "runaway": False}


def test_spatial_span_option(tmp_path, capsys):
    # The answer's span 2..2 leaves GT index 3 without a box: over the GT span each list scores
    # (1 - 2) / 2 = -0.5 (spatial -1), against 1 per list over the intersection {2} (spatial 2).
    half = ("<time> 2 - 2 </time> <think_bbox> 2. [0, 0, 10, 10] </think_bbox> "
            "<pred_bbox> 2. [0, 0, 10, 10] </pred_bbox>")
    path = write_lines(tmp_path / "in.jsonl", [{"completion": half, "target": O1_TARGET}])
    spatial = {}
    for span in ("intersection", "ground_truth"):
        assert main(["reward", "--task", "stvg-o1", "--input", str(path), "--spatial-span", span]) == 0
        spatial[span] = json.loads(capsys.readouterr().out)["spatial"]
    assert spatial == {"intersection": pytest.approx(2.0), "ground_truth": pytest.approx(-1.0)}


@pytest.mark.parametrize("items,needle", [
    ([{"completion": O1_GOOD, "target": O1_TARGET}, {"completion": O1_GOOD, "target": {"t_start": 1}}],
     "line 2: stvg-o1 target: missing field 't_end'"),
    ([{"completion": 5, "target": O1_TARGET}], "line 1: field 'completion' must be a string"),
    ([{"completion": O1_GOOD}], "line 1: missing field 'target'"),
    (["{not json"], "line 1: not valid JSON"),
    ([{"completion": O1_GOOD, "target": {**O1_TARGET, "boxes": [[2, 0, 0, 10]]}}], r"line 1: stvg-o1 target: field 'boxes[0]'"),
])
def test_bad_input_line_is_a_one_line_error_naming_line_and_field(tmp_path, capsys, items, needle):
    path = write_lines(tmp_path / "in.jsonl", items)
    out = tmp_path / "out.jsonl"
    assert main(["reward", "--task", "stvg-o1", "--input", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err
    assert not out.exists() and not Path(f"{out}.partial").exists()  # no partial output


def test_bad_weights_and_missing_input_are_errors(tmp_path, capsys):
    path = write_lines(tmp_path / "in.jsonl", [])
    assert main(["reward", "--task", "vtg", "--input", str(path), "--weights", "think=1"]) == 2
    assert "unknown reward term 'think' for task vtg; terms: tiou, format" in capsys.readouterr().err
    assert main(["reward", "--task", "vtg", "--input", str(path), "--weights", "tiou"]) == 2
    assert "must look like TERM=NUMBER" in capsys.readouterr().err
    assert main(["reward", "--task", "vtg", "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_stvg_reward_runs_as_a_command(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [{"completion": "<think>a</think><answer>1 to 3</answer>",
                                                "target": {"t_start": 2, "t_end": 4}}])
    done = subprocess.run([sys.executable, "-m", "infra.cli", "reward", "--task", "vtg", "--input", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    # tIoU = (3 - 2) / (4 - 1) = 1/3; format 1
    assert json.loads(done.stdout) == pytest.approx({"total": 4 / 3, "tiou": 1 / 3, "format": 1.0, "parsed": True,
                                                     "runaway": False})
