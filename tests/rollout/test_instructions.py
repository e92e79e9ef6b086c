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
