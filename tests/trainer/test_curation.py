"""VideoTG-R1's curation passes with a scripted stand-in for the model (the model is external to the
code under test): difficulty = 1 - mean tIoU worked out by hand, its file, and boundary reflection."""

from __future__ import annotations

import json
import math

import pytest

from infra.data.sample import GroundingSample
from infra.errors import ConfigError, DataError
from trainer.curation import (CurationConfig, curation_counts, difficulty_path, estimate_difficulty,
                              load_or_estimate, reflect_boundaries, reflection_prompt, reflection_score,
                              says_outside)


def _sample(sid: str, span: tuple[float, float], query: str = "the man opens the door") -> GroundingSample:
    return GroundingSample(id=sid, video=f"{sid}.mp4", fps=5.0, frame_count=100, width=160, height=120,
                           query=query, span_frames=(int(span[0] * 5), int(span[1] * 5)), span_seconds=span)


A, B = _sample("a", (2.0, 6.0)), _sample("b", (0.0, 10.0))

VTG = {
    # tIoU with (2, 6): 1, 2/6 (4..8: inter 2, union 6), 0 (unparseable), 0 (disjoint) -> mean 1/3
    "a": ["<think>x</think><answer>2.00 to 6.00</answer>", "<think>x</think><answer>4 to 8</answer>",
          "I do not know", "<answer>10 to 12</answer>"],
    # tIoU with (0, 10): 0.5, 0.5, 1, 0 (start after end) -> mean 0.5
    "b": ["<answer>0 to 5</answer>", "<answer>5 and 10</answer>", "<answer>0.0 to 10.0</answer>",
          "<answer>8 to 4</answer>"],
}


class ScriptedModel:
    """Plays back canned completions per sample id and records what it was asked."""

    def __init__(self, table):
        self.table = table
        self.calls: list[tuple[list[str], int]] = []

    def __call__(self, samples, n):
        self.calls.append(([s.id for s in samples], n))
        return [self.table[s.id][:n] for s in samples]


def test_difficulty_is_one_minus_mean_tiou_of_the_rollouts():
    model = ScriptedModel(VTG)
    scores = estimate_difficulty([A, B], model, k=4)
    assert scores == {"a": pytest.approx(1 - 1 / 3), "b": pytest.approx(0.5)}
    assert model.calls == [(["a", "b"], 4)]
    one_by_one = ScriptedModel(VTG)
    assert estimate_difficulty([A, B], one_by_one, k=4, batch_size=1) == scores
    assert one_by_one.calls == [(["a"], 4), (["b"], 4)]


def test_difficulty_parses_each_tasks_format():
    r1 = ScriptedModel({"a": ["<think>t</think><answer>Target ID: 3, Time range: 2.00 to 6.00</answer>",
                              "<think>t</think><answer>Target ID: 3</answer>"]})  # no time range: tIoU 0
    assert estimate_difficulty([A], r1, k=2, task="stvg-r1") == {"a": pytest.approx(0.5)}
    # stvg-o1 indices 2..5 read as the span [1.5, 5.5]: with (2, 6) inter 3.5, union 4.5
    o1 = ScriptedModel({"a": ["<time> 2 - 5 </time> <think_bbox> </think_bbox> <pred_bbox> </pred_bbox>"]})
    assert estimate_difficulty([A], o1, k=1, task="stvg-o1") == {"a": pytest.approx(1 - 3.5 / 4.5)}


def test_a_rollout_function_returning_the_wrong_count_is_an_error():
    with pytest.raises(RuntimeError, match="expected 4"):
        estimate_difficulty([A], lambda samples, n: [["<answer>1 to 2</answer>"]], k=4)
    with pytest.raises(RuntimeError, match="1 of 2"):
        estimate_difficulty([A, B], lambda samples, n: [["x"] * n], k=1)


def test_difficulty_file_sits_beside_the_annotations():
    assert difficulty_path("/data/hcstvg/train.json").as_posix() == "/data/hcstvg/train.difficulty.json"


def test_difficulty_is_estimated_once_and_stored_with_model_and_k(tmp_path):
    path = tmp_path / "train.difficulty.json"
    model = ScriptedModel(VTG)
    first = load_or_estimate([A, B], model, 4, path, model="qwen-7b@abc", task="vtg")
    assert first == {"a": pytest.approx(2 / 3), "b": pytest.approx(0.5)}
    stored = json.loads(path.read_text())
    assert stored["model"] == "qwen-7b@abc" and stored["k"] == 4 and stored["task"] == "vtg"
    assert stored["difficulty"] == {"a": pytest.approx(2 / 3, abs=1e-6), "b": 0.5}

    def must_not_run(samples, n):
        raise AssertionError("the stored scores should have been used")

    assert load_or_estimate([B, A], must_not_run, 4, path, model="qwen-7b@abc") == \
        {"b": pytest.approx(0.5), "a": pytest.approx(2 / 3, abs=1e-6)}
    # a new sample: only it is estimated, and the file keeps the old ones
    c = _sample("c", (1.0, 3.0))
    newcomer = ScriptedModel({"c": ["<answer>1 to 3</answer>"] * 4})
    assert load_or_estimate([A, c], newcomer, 4, path, model="qwen-7b@abc")["c"] == pytest.approx(0.0)
    assert newcomer.calls == [(["c"], 4)]
    assert set(json.loads(path.read_text())["difficulty"]) == {"a", "b", "c"}
    with pytest.raises(DataError, match="delete it"):
        load_or_estimate([A], must_not_run, 8, path, model="qwen-7b@abc")
    with pytest.raises(DataError, match="qwen-7b@abc"):
        load_or_estimate([A], must_not_run, 4, path, model="other-model")


def test_a_malformed_difficulty_file_names_the_field(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"model": "m", "k": 4, "task": "vtg", "difficulty": {"a": 1.7}}))
    with pytest.raises(DataError, match="difficulty.a"):
        load_or_estimate([A], ScriptedModel(VTG), 4, path, model="m")
    path.write_text("{not json")
    with pytest.raises(DataError, match="cannot be read"):
        load_or_estimate([A], ScriptedModel(VTG), 4, path, model="m")


# ---- boundary reflection -----------------------------------------------------------------------

@pytest.mark.parametrize("answer, outside", [
    ("<think>t</think><answer>yes: 8.0 to 10.0</answer>", True),   # wholly outside (2, 6)
    ("<think>t</think><answer>no</answer>", False),
    ("<think>t</think><answer>Yes</answer>", True),                 # a yes without a range counts
    ("<think>t</think><answer>yes: 3 to 5</answer>", False),        # inside the annotated span
    ("<think>t</think><answer>yes: 5 to 9</answer>", True),         # 1 of 4 s inside: mostly outside
    ("<think>t</think><answer>yes: 4 to 7</answer>", False),        # 2 of 3 s inside
    ("yes, it happens again", False),                               # no <answer>: unparseable
    ("<answer>yesterday</answer>", False),
])
def test_says_outside(answer, outside):
    assert says_outside(answer, (2.0, 6.0)) is outside


def test_reflection_drops_samples_at_or_above_the_threshold():
    samples = [_sample(s, (2.0, 6.0)) for s in "pqrs"]
    scores = {"p": 0.0, "q": 0.5, "r": 0.75, "s": 0.49}
    kept, dropped = reflect_boundaries(samples, lambda batch: [scores[x.id] for x in batch], 0.5, batch_size=3)
    assert [s.id for s in kept] == ["p", "s"]
    assert dropped == [("q", 0.5), ("r", 0.75)]


def test_reflection_with_a_scripted_model_answering_the_prompt():
    answers = {
        "p": ["<answer>no</answer>"] * 4,                                           # score 0
        "q": ["<answer>yes: 8 to 9</answer>", "<answer>no</answer>"] * 2,            # score 0.5
        "r": ["<answer>yes: 3 to 4</answer>"] * 4,                                  # inside the span: 0
        "s": ["<answer>yes</answer>"] * 3 + ["<answer>no</answer>"],                # 0.75
    }
    samples = [_sample(s, (2.0, 6.0)) for s in "pqrs"]
    asked = []

    def ask(batch):
        asked.extend(reflection_prompt(x) for x in batch)
        return [reflection_score(answers[x.id], x.span_seconds) for x in batch]

    kept, dropped = reflect_boundaries(samples, ask, threshold=0.5)
    assert [s.id for s in kept] == ["p", "r"]
    assert dropped == [("q", 0.5), ("s", 0.75)]
    assert asked[0] == (
        'In this video, the event "the man opens the door" is annotated from 2.00 to 6.00 seconds. '
        "The video is 20.00 seconds long. Watch the whole video. Does the same event also happen at any "
        "time OUTSIDE 2.00 to 6.00 seconds? Think it over inside <think> </think>. Then answer inside "
        '<answer> </answer> with "yes: s to e", giving the other time range in seconds, or with "no". '
        "For example: <answer>yes: 3.50 to 6.00</answer> or <answer>no</answer>.")


def test_reflection_rejects_bad_scores():
    with pytest.raises(RuntimeError, match="in \\[0, 1\\]"):
        reflect_boundaries([A], lambda batch: [1.5], 0.5)
    with pytest.raises(RuntimeError, match="1 scores for 2"):
        reflect_boundaries([A, B], lambda batch: [0.1], 0.5)


def test_counts_for_mlflow():
    kept = [A, B]
    counts = curation_counts(samples_in=4, kept=kept, difficulty={"a": 0.9, "b": 0.5, "z": 0.1}, hard_threshold=0.7)
    assert counts.as_metrics() == {
        "data/curation/in": 4.0, "data/curation/reflection_kept": 2.0, "data/curation/reflection_dropped": 2.0,
        "data/curation/scored": 2.0, "data/curation/hard": 1.0, "data/curation/mean_difficulty": pytest.approx(0.7),
    }
    assert math.isnan(curation_counts(3, kept, None, 0.7).mean_difficulty)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="curation.task"):
        CurationConfig(task="vqa")
    with pytest.raises(ConfigError, match="curation.reflection_threshold"):
        CurationConfig(reflection_threshold=2.0)


@pytest.mark.parametrize("pass_name", ["difficulty", "reflection"])
def test_scores_made_before_a_failure_are_kept_and_the_rerun_scores_only_the_rest(tmp_path, pass_name):
    """A curation pass over a large split takes long: when a batch fails (here a VideoError at the
    third, as a damaged video raises it), the first two batches' scores are in the file already."""
    from infra.errors import VideoError
    from trainer.curation import load_or_ask

    samples = [_sample(f"s{i}", (2.0, 6.0)) for i in range(6)]
    answer = "<think>x</think><answer>4 to 8</answer>"  # tIoU 2/6 with (2, 6): difficulty 2/3
    asked: list[list[str]] = []

    def model(batch, n=1):
        asked.append([s.id for s in batch])
        if any(s.id == "s4" for s in batch):
            raise VideoError("s4.mp4", "is truncated")
        return [[answer] * n for _ in batch] if pass_name == "difficulty" else [0.25] * len(batch)

    def run(fn):
        if pass_name == "difficulty":
            return load_or_estimate(samples, fn, 2, tmp_path / "x.json", model="m", task="vtg", batch_size=2)
        return load_or_ask(samples, fn, tmp_path / "x.json", model="m", k=2, task="vtg", batch_size=2)

    with pytest.raises(VideoError, match="s4.mp4"):
        run(model)
    assert asked == [["s0", "s1"], ["s2", "s3"], ["s4", "s5"]]
    kept = json.loads((tmp_path / "x.json").read_text())[pass_name]
    expected = 2 / 3 if pass_name == "difficulty" else 0.25
    assert kept == {f"s{i}": pytest.approx(expected, abs=1e-6) for i in range(4)}

    def fixed(batch, n=1):  # the video re-encoded: every sample answers
        asked.append([s.id for s in batch])
        return [[answer] * n for _ in batch] if pass_name == "difficulty" else [0.25] * len(batch)

    asked.clear()
    assert run(fixed) == {f"s{i}": pytest.approx(expected, abs=1e-6) for i in range(6)}
    assert asked == [["s4", "s5"]]
