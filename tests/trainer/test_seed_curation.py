"""VideoTG-R1's curation passes through the real rollout pool (Ray) and a real MLflow store, with a
scripted model (tests/trainer/_seed_models.py) that answers every question with
"<answer>yes:8 to 12</answer>.", so what each pass keeps is worked out by hand from the GT spans.
(The decision rules themselves are tested on scripted answers in test_curation.py.)"""

from __future__ import annotations

import json
import os

import pytest

from rollout.prompting import PromptOptions
from tests.trainer._seed_models import YES_8_TO_12, write_scripted_model
from trainer.curation import reflection_prompt

pytestmark = pytest.mark.slow

# The preset's training split (synthetic seed 1, 8 videos) and its GT spans:
#   00000 11.6-18.8, 00001 8.4-19.4, 00002 14.4-19.8, 00003 0-6, 00004 0.6-11.2, 00005 4.2-13.6,
#   00006 2.2-8.6, 00007 5.6-14.8.
# Reflection: "yes, also at 8-12" counts when less than half of 8-12 lies inside the span:
#   inside 0.4, 3.6, 0, 0, 3.2, 4, 0.6, 4 of 4 s -> dropped 00000, 00002, 00003, 00006 (score 1.0).
# Difficulty of the kept ones, 1 - tIoU(8-12, span):
#   00001: inter 3.6, union 8-19.4 = 11.4; 00004: 3.2 / 11.4; 00005: 4 / 9.4; 00007: 4 / 9.2.
DROPPED = ["synth-s1-00000.mp4", "synth-s1-00002.mp4", "synth-s1-00003.mp4", "synth-s1-00006.mp4"]
DIFFICULTY = {"synth-s1-00001.mp4": 1 - 3.6 / 11.4, "synth-s1-00004.mp4": 1 - 3.2 / 11.4,
              "synth-s1-00005.mp4": 1 - 4 / 9.4, "synth-s1-00007.mp4": 1 - 4 / 9.2}
HARD = ["synth-s1-00004.mp4"]  # 0.719 >= 0.7; the others are below


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model):
    import ray

    from infra.loopback import init_local_ray
    from rollout.pool import RolloutPool
    from trainer.config import load_run_config
    from trainer.presets import resolve

    root = tmp_path_factory.mktemp("curation")
    scripted = write_scripted_model(tiny_model, root / "scripted-yes", YES_8_TO_12)
    cfg = load_run_config(resolve("videotg-r1-curated"), [
        f"model.cache_dir={root / 'cache'}", f"model.path={scripted}", f"output_dir={root / 'run'}", "quiet=true",
        f"tracking.tracking_uri=sqlite:///{root / 'mlflow.db'}"])
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    init_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    pool = RolloutPool(str(scripted), cfg.rollout)
    yield cfg, pool, str(scripted)
    pool.shutdown()
    ray.shutdown()


def test_the_reflection_question_reaches_the_engine(setup):
    from trainer.preparation import prepare_data

    cfg, pool, model_dir = setup
    sample = prepare_data(cfg)[0][0]
    batch = pool.generate([sample], 1, task="vtg", options=[PromptOptions(instruction=reflection_prompt(sample))])
    from rollout.models import get_family

    text = get_family("qwen2_5_vl").load_processor(model_dir).tokenizer.decode(batch.prompts[0].input_ids)
    assert 'the event "the blue circle moving left" is annotated from 11.60 to 18.80 seconds.' in text
    assert batch.completions[0].text.startswith("<answer>yes:8 to 12</answer>")


def test_curation_drops_flagged_samples_scores_the_rest_once_and_logs_the_counts(setup):
    from infra.tracking import Tracker
    from rollout.models.source import as_model_source
    from trainer.curate_job import curate_training_data
    from trainer.preparation import annotation_files, prepare_data

    cfg, pool, model_dir = setup
    train = prepare_data(cfg)[0]
    assert len(train) == 8
    tracker = Tracker.start(cfg.tracking)
    try:
        kept, plan = curate_training_data(cfg, pool, train, tracker, as_model_source(model_dir))
        assert [s.id for s in kept] == sorted(DIFFICULTY)
        assert plan.total_steps == cfg.total_steps
        assert plan.difficulty == pytest.approx(DIFFICULTY, abs=1e-6)
        assert [sid for sid in sorted(DIFFICULTY) if plan.mask_for(sid, 0) is not None] == HARD
        assert plan.mask_for(HARD[0], 0).share == 0.5 and plan.mask_for(HARD[0], 2).share == 0.25

        def last(name):
            return tracker.client.get_metric_history(tracker.run_id, name)[-1].value

        assert last("data/curation/in") == 8
        assert last("data/curation/reflection_kept") == 4
        assert last("data/curation/reflection_dropped") == 4
        assert last("data/curation/scored") == 4
        assert last("data/curation/hard") == 1
        assert last("data/curation/mean_difficulty") == pytest.approx(sum(DIFFICULTY.values()) / 4, abs=1e-6)
        listed = tracker.client.download_artifacts(tracker.run_id, "curation/dropped.json", str(cfg.run_dir / "dl"))
        dropped = json.loads(open(listed).read())
        assert dropped == {"threshold": 0.5, "dropped": [{"id": sid, "score": 1.0} for sid in DROPPED]}

        # the scores are stored beside the annotations, and a second run reads them instead of asking
        annotations = annotation_files(cfg)["train"].local
        stored = json.loads(annotations.with_name("annotations.difficulty.json").read_text())
        assert stored["difficulty"] == pytest.approx(DIFFICULTY, abs=1e-6) and stored["k"] == 4
        reflection = json.loads(annotations.with_name("annotations.reflection.json").read_text())["reflection"]
        assert reflection == {s.id: (1.0 if s.id in DROPPED else 0.0) for s in train}
        tokens = sum(w["tokens"] for w in pool.stats())
        again, _ = curate_training_data(cfg, pool, train, tracker, as_model_source(model_dir))
        assert [s.id for s in again] == [s.id for s in kept]
        assert sum(w["tokens"] for w in pool.stats()) == tokens, "the stored scores must be reused, not recomputed"
    finally:
        tracker.close()
