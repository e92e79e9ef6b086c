"""VideoTG-R1's curation passes in the driver of `stvg train`, through the run's rollout pool.

Runs after the pool exists (initial weights, version 0) and before the learner starts:

1. boundary reflection (curation.reflection): each training sample's reflection question
   (trainer.curation.reflection_prompt, sent as the prompt's instruction with the sample's frames)
   is answered curation.reflection_rollouts times; samples whose share of "the event also happens
   outside the annotated span" answers is >= curation.reflection_threshold are dropped;
2. difficulty (always, on the kept samples): curation.rollouts zero-shot rollouts with the task's
   normal prompt; difficulty = 1 - their mean tIoU.

Both sets of scores are stored next to the training annotations (`<stem>.reflection.json`,
`<stem>.difficulty.json`, or beside curation.difficulty_file) with the model identity, K and task, so
they are computed once: a resumed or repeated run reads them back and keeps the same samples. The
counts go to MLflow as data/curation/* (at step 0) and the drop list as the artifact
curation/dropped.json. The difficulty scores become the curriculum plan the rollout source masks by.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

from infra.data.dataset_cache import DatasetCacheFile, beside, cache_file
from infra.data.sample import GroundingSample
from infra.errors import UserError
from rollout.curriculum import CurriculumPlan
from rollout.engines import SamplingConfig
from rollout.prompting import PromptOptions
from trainer.bad_videos import BadVideoLog
from trainer.config import RunConfig
from trainer.curation import (curation_counts, difficulty_path, load_or_ask, load_or_estimate, reflect_boundaries,
                              reflection_path, reflection_prompt, reflection_score)

DROP_LIST = "dropped.json"
ARTIFACT_DIR = "curation"


def curate_training_data(cfg: RunConfig, pool, train: Sequence[GroundingSample], tracker,
                         model) -> tuple[list[GroundingSample], Optional[CurriculumPlan]]:
    """(the training split to train on, the curriculum plan): `train` itself and no plan when
    curation is off; else the samples reflection kept and, with the curriculum on, their plan."""
    cur = cfg.curation
    if not cur.enabled:
        return list(train), None
    difficulty_cache = _difficulty_cache(cfg)
    identity = model_identity(cfg, model)
    ask = _PoolQuestions(pool, cfg)
    kept, dropped = list(train), []
    if cur.reflection:
        with difficulty_cache.sibling(reflection_path(difficulty_cache.path).name).synced() as path:
            scores = load_or_ask(train, ask.reflection_scores, path, model=identity, k=cur.reflection_rollouts,
                                 task=cur.task, batch_size=cur.batch_size)
        asked = [s for s in train if s.id in scores]  # all but samples whose video was left out
        kept, dropped = reflect_boundaries(asked, lambda batch: [scores[s.id] for s in batch],
                                           cur.reflection_threshold, batch_size=max(len(asked), 1))
    difficulty = {}
    if kept:
        with difficulty_cache.synced() as path:
            difficulty = load_or_estimate(kept, ask.completions, cur.rollouts, path, model=identity, task=cur.task,
                                          batch_size=cur.batch_size, progress=not cfg.quiet)
        kept = [s for s in kept if s.id in difficulty]
    # samples whose video was left out (data.on_bad_video=skip) are counted apart, not as dropped
    counts = curation_counts(len(train) - len(ask.left_out), kept, difficulty, cfg.curriculum.difficulty_threshold)
    tracker.log_metrics({k: v for k, v in counts.as_metrics().items() if not math.isnan(v)}, step=0)
    _log_drop_list(tracker, cfg, dropped, difficulty_cache.path)
    where = difficulty_cache.remote.rpartition("/")[0] if difficulty_cache.remote else difficulty_cache.path.parent
    left_out = f", {len(ask.left_out)} left out (their videos cannot be used)" if ask.left_out else ""
    print(f"curation: {counts.samples_in} samples, {counts.reflection_kept} kept by boundary reflection "
          f"({len(dropped)} dropped{left_out}), {counts.hard} of {counts.scored} hard (difficulty >= "
          f"{cfg.curriculum.difficulty_threshold}); scores in {where}", flush=True)
    if not kept and len(ask.left_out) == len(train):
        raise UserError(f"none of the {len(train)} training samples could be curated: every video was left out "
                        "(warnings above); check them with `stvg data inspect`")
    if not kept:
        raise UserError(f"boundary reflection dropped all {len(train)} training samples (curation."
                        f"reflection_threshold={cur.reflection_threshold}); raise the threshold or set "
                        "curation.reflection=false")
    plan = CurriculumPlan(cfg.curriculum, cfg.total_steps, difficulty) if cfg.curriculum.enabled else None
    return kept, plan


def _difficulty_cache(cfg: RunConfig) -> DatasetCacheFile:
    """curation.difficulty_file, or `<stem>.difficulty.json` beside the training annotations, in the
    dataset's own storage (infra.data.dataset_cache): computed once across pods and reruns."""
    from trainer.preparation import annotation_files

    if cfg.curation.difficulty_file:
        return cache_file(cfg.curation.difficulty_file, cfg.model.cache_dir)
    annotations = annotation_files(cfg)["train"]
    return beside(annotations, difficulty_path(annotations.local).name, cfg.model.cache_dir)


def model_identity(cfg: RunConfig, model) -> str:
    """What the stored scores were computed with: the model (rollout.models.source.ModelSource, its
    contents' fingerprint when known) and the frames it is shown."""
    name = f"{model.describe()}#{model.fingerprint[:16]}" if model.fingerprint else model.describe()
    r = cfg.rollout
    return f"{name}|fps={r.fps:g},max_frames={r.max_frames},max_long_side={r.max_long_side}"


class _PoolQuestions:
    """The rollout and question functions trainer.curation expects, on the rollout pool. With
    data.on_bad_video=skip a sample whose video cannot be used gets no answers (so no score; the
    curation leaves it out of training), is warned about once per file and listed in `left_out`."""

    def __init__(self, pool, cfg: RunConfig):
        self.pool, self.cfg, self.calls = pool, cfg, 0
        self.skip = cfg.data.on_bad_video == "skip"
        self.left_out: set[str] = set()
        self._warnings = BadVideoLog(print)

    def _sampling(self) -> SamplingConfig:
        r = self.cfg.rollout
        self.calls += 1  # a different seed per call, the same sequence on every run
        return SamplingConfig(r.temperature, r.top_p, r.max_new_tokens, seed=self.cfg.seed * 1_000_003 + 10**6 + self.calls)

    def _texts(self, samples: Sequence[GroundingSample], n: int, options=None) -> list[list[str]]:
        batch = self.pool.generate(list(samples), n, self._sampling(), task=self.cfg.curation.task, options=options,
                                   skip_bad_videos=self.skip)
        self._warnings.note(batch.skipped)
        self.left_out.update(s.sample_id for s in batch.skipped)
        answers = batch.answers_by_sample()
        return [answers[s.id][1] if s.id in answers else [] for s in samples]

    def completions(self, samples: Sequence[GroundingSample], n: int) -> list[list[str]]:
        """n zero-shot completions per sample with the task's prompt (the difficulty pass)."""
        return self._texts(samples, n)

    def reflection_scores(self, samples: Sequence[GroundingSample]) -> list[Optional[float]]:
        """Each sample's share of reflection answers saying the event also happens elsewhere (None:
        its video was left out)."""
        options = [PromptOptions(instruction=reflection_prompt(s)) for s in samples]
        answers = self._texts(samples, self.cfg.curation.reflection_rollouts, options)
        return [reflection_score(texts, s.span_seconds) if texts else None for texts, s in zip(answers, samples)]


def _log_drop_list(tracker, cfg: RunConfig, dropped: list[tuple[str, float]], difficulty_file: Path) -> None:
    folder = cfg.run_dir / ARTIFACT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    body: dict[str, Any] = {"threshold": cfg.curation.reflection_threshold,
                            "dropped": [{"id": sid, "score": score} for sid, score in dropped]}
    (folder / DROP_LIST).write_text(json.dumps(body, indent=1) + "\n")
    tracker.log_artifact(folder / DROP_LIST, ARTIFACT_DIR)
    if difficulty_file.is_file():
        tracker.log_artifact(difficulty_file, ARTIFACT_DIR)
