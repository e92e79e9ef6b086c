"""Instruction texts: frame times stated, formats asked for, STVG-R1 quoted verbatim."""

from __future__ import annotations

import pytest

from infra.errors import UserError
from rollout.prompts import build_instruction, format_seconds


def test_seconds_are_written_with_at_most_two_decimals():
    assert [format_seconds(t) for t in (0.0, 0.5, 1.0, 2.25, 7.333, 10.0)] == ["0", "0.5", "1", "2.25", "7.33", "10"]


def test_every_instruction_states_frame_size_and_frame_times():
    for task in ("stvg-o1", "stvg-r1", "vtg"):
        text = build_instruction(task, "a dog", [0.0, 0.5, 1.0], (168, 112)).text
        assert text.startswith("The video is 3 frames of 168x112 pixels; the frames are at these seconds: 0, 0.5, 1.\n")


def test_stvg_o1_asks_for_the_three_tagged_parts_in_pixels_of_the_shown_frames():
    instruction = build_instruction("stvg-o1", "the red square moving right", [0.0, 1.0], (336, 252))
    assert instruction.video_first
    for part in ("<time> ts - te </time>", "<think_bbox> i. [x1, y1, x2, y2], ... </think_bbox>",
                 "<pred_bbox> i. [x1, y1, x2, y2], ... </pred_bbox>", "336x252 frames", '"the red square moving right"'):
        assert part in instruction.text


def test_stvg_r1_quotes_the_paper_with_lowercased_query_and_text_before_video():
    instruction = build_instruction("stvg-r1", "The Man turns around.", [0.0], (56, 56))
    assert not instruction.video_first
    assert ('Each object in the video is marked with a red number at its center, representing its object ID. '
            'To accurately pinpoint the event "the man turns around" in the video:\n'
            '1.Determine the precise time period of the event occurs.\n') in instruction.text
    assert instruction.text.endswith('For example: "Target ID: 1, Time range: 12.54 to 17.83".')


def test_vtg_asks_for_an_answer_span_in_seconds():
    text = build_instruction("vtg", "a door opens", [0.0], (56, 56)).text
    assert "<answer>s to e</answer>" in text and "<think> </think>" in text


def test_empty_query_and_unknown_task_are_user_errors():
    with pytest.raises(UserError, match="empty query"):
        build_instruction("vtg", "   ", [0.0], (56, 56))
    with pytest.raises(UserError, match="stvg-o1, stvg-r1, vtg"):
        build_instruction("caption", "x", [0.0], (56, 56))


def test_rollout_config_validates_choices_and_ranges():
    from infra.errors import ConfigError
    from rollout.config import RolloutConfig

    assert RolloutConfig().engine == "auto"
    with pytest.raises(ConfigError, match="rollout.engine"):
        RolloutConfig(engine="tgi")
    with pytest.raises(ConfigError, match="rollout.top_p"):
        RolloutConfig(top_p=0.0)
    with pytest.raises(ConfigError, match="rollout.model_family"):
        RolloutConfig(model_family="llava")
    with pytest.raises(ConfigError, match="rollout.resources_per_worker.stvg_rollout"):
        RolloutConfig(resources_per_worker={"stvg_rollout": -1})


def test_rollout_config_loads_from_yaml_overrides(tmp_path):
    from infra.config import load_config
    from rollout.config import RolloutConfig

    path = tmp_path / "r.yaml"
    path.write_text("num_workers: 3\nresources_per_worker: {stvg_rollout: 1}\n")
    config = load_config(RolloutConfig, path, ["fps=1.0", "max_frames=null"])
    assert (config.num_workers, config.resources_per_worker, config.fps, config.max_frames) == \
        (3, {"stvg_rollout": 1}, 1.0, None)


def test_compact_instruction_asks_for_the_same_tagged_parts_with_a_short_frames_line():
    times = [float(t) for t in range(20)]
    compact = build_instruction("stvg-o1", "the red square moving right", times, (56, 56), "compact")
    paper = build_instruction("stvg-o1", "the red square moving right", times, (56, 56))
    assert compact.video_first
    assert compact.text.startswith("20 frames of 56x56 px, 0 to 19 s every 1 s.\n")
    for part in ("<time> ts - te </time>", "[x1, y1, x2, y2]", "<think_bbox>", "<pred_bbox>",
                 '"the red square moving right"'):
        assert part in compact.text
    assert len(compact.text) < len(paper.text) / 2


def test_compact_frames_line_lists_the_times_when_they_are_unevenly_spaced():
    text = build_instruction("vtg", "a door opens", [0.0, 2.5, 9.0], (112, 84), "compact").text
    assert text == ('3 frames of 112x84 px, at 0, 2.5, 9 s.\n'
                    'When is "a door opens"? Answer <think> </think> <answer>s to e</answer> in seconds.')


def test_a_template_gets_its_fields_and_the_frames_line_in_front_or_where_it_asks():
    template = 'Box "{query}" in the {width}x{height} frames.'
    assert build_instruction("stvg-o1", "a dog", [0.0, 1.0], (56, 28), template).text == \
        '2 frames of 56x28 px, 0 to 1 s every 1 s.\nBox "a dog" in the 56x28 frames.'
    placed = build_instruction("vtg", "a dog", [0.0, 1.0], (56, 28), "When is {query}? ({frames})").text
    assert placed == "When is a dog? (2 frames of 56x28 px, 0 to 1 s every 1 s.)"


def test_rollout_instruction_reads_a_template_file_and_rejects_unusable_ones(tmp_path):
    from infra.errors import ConfigError
    from rollout.config import RolloutConfig

    path = tmp_path / "ask.txt"
    path.write_text('Where is "{query}"?\n', encoding="utf-8")
    assert RolloutConfig(instruction=str(path)).instruction == 'Where is "{query}"?\n'
    assert RolloutConfig(instruction="compact").instruction == "compact"
    for value, message in ((str(tmp_path / "missing.txt"), "neither a style"), ("Find {query} in {fps}", "unknown fields"),
                           ("Find {query} now}", "not a valid template")):
        with pytest.raises(ConfigError, match=f"rollout.instruction.*{message}"):
            RolloutConfig(instruction=value)
    path.write_text("Find the target.", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"must hold \{query\}"):
        RolloutConfig(instruction=str(path))
