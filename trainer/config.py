"""The run config: one typed tree that `stvg train`, `stvg sft`, `stvg eval` and `stvg submit` share.

Each component owns its section's dataclass (and validates it); this module only composes them and
checks what spans sections. Load it with `load_run_config(path, overrides)`; the YAML files in
`configs/` are presets, and with no file at all the embedded demo defaults run on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from infra.config import check_choice, check_range, load_config
from infra.errors import ConfigError
from infra.k8s.config import ClusterConfig
from infra.storage.config import CheckpointConfig
from infra.tracking.config import TrackingConfig
from rewards.client import RewardClientConfig
from rollout.config import RolloutConfig
from rollout.curriculum import CurriculumConfig
from trainer.curation import CurationConfig
from trainer.grpo.config import GRPOConfig
from trainer.learner.config import LearnerConfig

DATA_SOURCES = ("synthetic", "hcstvg-v1", "hcstvg-v2", "vidstg", "charades")
MODES = ("sync", "async")
BAD_VIDEO_POLICIES = ("fail", "skip")


@dataclass
class ModelConfig:
    path: str = "tiny"
    """A Hugging Face checkpoint directory, or `tiny` for the random-initialised test model built
    offline (no weights are ever downloaded)."""
    tiny_seed: int = 0
    """Seed of the tiny model's weights and tokenizer (path=tiny only)."""
    tiny_size: str = "small"
    """path=tiny only: small (0.87 M parameters, the tests' and the demo's) or medium (2.1 M, a vision
    tower that can learn where a shape is; the STVG-o1 learning trials, docs/learning-run.md)."""
    cache_dir: str = "runs/cache"
    """Where built artefacts (the tiny model, synthetic datasets) are cached between runs."""

    def __post_init__(self) -> None:
        from rollout.models.tiny import TINY_SIZES

        check_choice("model.tiny_size", self.tiny_size, tuple(TINY_SIZES))


@dataclass
class DataConfig:
    source: str = "synthetic"
    """synthetic (generated on the fly, HC-STVG v2 layout) or a real format: hcstvg-v1, hcstvg-v2,
    vidstg, charades."""
    train_annotations: str = ""
    """Annotation file of the training split (real formats)."""
    heldout_annotations: str = ""
    """Annotation file of the held-out split used for periodic evaluation (real formats)."""
    video_root: str = ""
    """Folder or s3:// prefix the annotation's video names are resolved against."""
    trajectories_dir: str = ""
    """VidSTG only: folder of VidOR trajectory files."""
    tracks: str = ""
    """Optional instance-tracks file (docs/data.md) for STVG-R1 visual prompting."""
    tracker: str = ""
    """task=stvg-r1 only: detector + tracker run once over the videos of samples that have no tracks
    (none from the dataset or data.tracks): colour-blobs (synthetic-style videos) or yolo; "" = none
    (such samples are an error). The tracks are cached next to the annotation file."""
    tracker_fps: float = 0.0
    """Frames per second the tracker analyses (0 = every frame)."""
    tracker_options: dict[str, Any] = field(default_factory=dict)
    """Options of the tracker's config, e.g. {weights: /models/yolo12x.pt, classes: [0]} for yolo."""
    skip_invalid: bool = False
    """Skip malformed annotation records with a counted warning instead of failing."""
    on_bad_video: str = "fail"
    """A video that is missing, damaged or truncated: fail (end the run with one line naming the
    file) or skip (leave its samples out of rollouts and evaluations, warn once per file and count
    them in MLflow: data/bad_video_skips, data/bad_videos, eval/bad_video_skips)."""
    synthetic_train_videos: int = 32
    """synthetic only: videos in the training split."""
    synthetic_heldout_videos: int = 16
    """synthetic only: videos in the held-out split."""
    synthetic_seed: int = 1
    """synthetic only: generator seed of the training split (held-out uses seed + 1000)."""
    synthetic_width: int = 160
    synthetic_height: int = 120
    synthetic_fps: float = 5.0
    synthetic_objects: list[int] = field(default_factory=lambda: [2, 4])
    """synthetic only: fewest and most shapes per video, the target included ([1, 1]: the target
    alone, so the query need not be read; docs/data.md)."""
    synthetic_object_size: list[float] = field(default_factory=lambda: [0.12, 0.2])
    """synthetic only: [low, high] side of the shapes as a fraction of the frame's short side."""
    synthetic_target_span: list[float] = field(default_factory=lambda: [0.2, 0.6])
    """synthetic only: [low, high] share of the 20 s video on which the target is visible."""
    synthetic_background: str = "grey"
    """synthetic only: grey (a flat grey, the standard scenes) or coded (a faint tint that states each
    pixel's place and time, so a tiny model can read where and when a shape is; docs/data.md)."""

    def __post_init__(self) -> None:
        check_choice("data.source", self.source, DATA_SOURCES)
        if self.source != "synthetic" and not self.train_annotations:
            raise ConfigError(f"data.train_annotations is required when data.source={self.source}")
        check_range("data.synthetic_train_videos", self.synthetic_train_videos, 1)
        check_range("data.synthetic_heldout_videos", self.synthetic_heldout_videos, 0)
        check_choice("data.tracker", self.tracker, ("", "colour-blobs", "yolo"))
        check_choice("data.on_bad_video", self.on_bad_video, BAD_VIDEO_POLICIES)
        check_range("data.tracker_fps", self.tracker_fps, 0)
        self.scene_options()  # fails now, naming the key, when the synthetic scene knobs are wrong

    def scene_options(self):
        """The synthetic generator's SceneOptions from the synthetic_* keys."""
        from infra.data.synth import SceneOptions
        from infra.errors import UserError

        values = {"objects": self.synthetic_objects, "object_size": self.synthetic_object_size,
                  "target_span": self.synthetic_target_span}
        for name, value in values.items():
            if len(value) != 2:
                raise ConfigError(f"data.synthetic_{name}={list(value)} must be a pair [low, high]")
        try:
            return SceneOptions(**{name: tuple(value) for name, value in values.items()},
                                background=self.synthetic_background)
        except UserError as err:
            raise ConfigError(f"data.synthetic_{err}") from None


@dataclass
class EvalConfig:
    every_n_steps: int = 0
    """Evaluate on the held-out split every N steps (0 = only at the end of training)."""
    at_end: bool = True
    """Evaluate once more after the last step."""
    at_start: bool = False
    """Evaluate once before the first step (logged at step 0), so the run shows held-out figures
    before and after training (the demo does; `stvg train` then prints both)."""
    max_samples: int = 64
    """Most held-out samples per evaluation (0 = all)."""
    temperature: float = 0.0
    """0 = greedy decoding, the usual protocol for reporting metrics."""

    def __post_init__(self) -> None:
        check_range("eval.every_n_steps", self.every_n_steps, 0)
        check_range("eval.max_samples", self.max_samples, 0)
        check_range("eval.temperature", self.temperature, 0)


@dataclass
class WarmStartConfig:
    steps: int = 0
    """`stvg train` only: SFT steps on ground-truth answers (trainer/sft.py, the same learner stack)
    before GRPO starts, in a run of its own (`<name>-warm-start`, output under `<output_dir>/warm-start`,
    reused when it already finished); GRPO then starts from its checkpoint. 0 = no warm start."""
    lr: float = 1e-3
    """AdamW learning rate of the warm start (learner.lr is GRPO's)."""
    prompts_per_step: int = 16
    """Samples per warm-start step (its batch size)."""

    def __post_init__(self) -> None:
        check_range("warm_start.steps", self.steps, 0)
        check_range("warm_start.lr", self.lr, 0, low_open=True)
        check_range("warm_start.prompts_per_step", self.prompts_per_step, 1)


@dataclass
class RunConfig:
    name: str = "demo"
    """Run name: MLflow run name and the default output folder runs/<name>."""
    output_dir: str = ""
    """Local working folder of the run (default runs/<name>)."""
    seed: int = 0
    """Seeds prompt order, sampling and initialisation."""
    task: str = "stvg-o1"
    """Output format and reward: stvg-o1, stvg-r1 or vtg (sets rollout.task too)."""
    total_steps: int = 4
    """GRPO steps to run."""
    prompts_per_step: int = 2
    """Prompts per step; each is answered grpo.group_size times."""
    mode: str = "sync"
    """sync: rollout, then learn. async: one-step-off, the rollout of step k+1 overlaps the update of
    step k (its completions are one policy version stale at most)."""
    max_staleness: int = 1
    """async only: most policy versions an experience may lag behind the learner."""
    resume: str = "never"
    """never: start fresh (fails if checkpoints exist); auto: continue from the latest complete
    checkpoint if there is one; or a checkpoint URI to start from."""
    log_every_n_steps: int = 1
    """Console summary line every N steps (MLflow gets every step's metrics)."""
    quiet: bool = False
    """No progress bar; one line per logged step (for CI logs)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardClientConfig = field(default_factory=RewardClientConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    curation: CurationConfig = field(default_factory=CurationConfig)
    """VideoTG-R1 data curation before training (boundary reflection, difficulty)."""
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """VideoTG-R1 curriculum: hard samples' videos partly masked, less as training goes on."""
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
    """A short SFT stage before GRPO (`stvg train`), so a model from scratch has something to improve."""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(f"name={self.name!r} must be a non-empty name without '/'")
        check_choice("task", self.task, ("stvg-o1", "stvg-r1", "vtg"))
        check_choice("mode", self.mode, MODES)
        check_range("total_steps", self.total_steps, 1)
        check_range("prompts_per_step", self.prompts_per_step, 1)
        check_range("max_staleness", self.max_staleness, 0)
        check_range("log_every_n_steps", self.log_every_n_steps, 1)
        if self.resume not in ("never", "auto") and "://" not in self.resume and not Path(self.resume).exists():
            raise ConfigError(f"resume={self.resume!r}: use never, auto, or an existing checkpoint URI")
        if self.rollout.task != self.task:
            raise ConfigError(f"rollout.task={self.rollout.task!r} differs from task={self.task!r}; set task only")
        if self.grpo.max_completion_length != self.rollout.max_new_tokens:
            raise ConfigError(
                f"grpo.max_completion_length={self.grpo.max_completion_length} must equal "
                f"rollout.max_new_tokens={self.rollout.max_new_tokens}; set rollout.max_new_tokens only")
        if self.rollout.temperature != self.grpo.temperature:
            raise ConfigError(
                f"grpo.temperature={self.grpo.temperature} must equal rollout.temperature="
                f"{self.rollout.temperature}: the learner must score the distribution that was sampled")
        if self.grpo.credit == "box" and self.task != "stvg-o1":
            raise ConfigError(f"grpo.credit=box scores the boxes of STVG-o1 answers; task={self.task!r} has none "
                              f"(use grpo.credit=answer)")
        if self.learner.old_logprobs == "rollout" and self.rollout.top_p < 1.0:
            raise ConfigError(
                f"learner.old_logprobs=rollout needs rollout.top_p=1 (got {self.rollout.top_p}): the engine's "
                f"log-probs are then renormalised over the nucleus, which the learner cannot reproduce; "
                f"use learner.old_logprobs=recompute")
        if self.mode == "async" and self.max_staleness < 1:
            raise ConfigError("mode=async needs max_staleness >= 1")
        if self.curriculum.enabled and not self.curation.enabled:
            raise ConfigError("curriculum.enabled=true needs the difficulty scores of curation.enabled=true")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name}")


# Keys that must agree across sections: written once, followed unless set explicitly.
DERIVED_KEYS = {
    "rollout.task": "task",
    "grpo.temperature": "rollout.temperature",
    "grpo.max_completion_length": "rollout.max_new_tokens",
    "curation.task": "task",
}


def load_run_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Defaults, then the YAML file, then `key=value` overrides (see DERIVED_KEYS)."""
    return load_config(RunConfig, path, overrides, derived=DERIVED_KEYS)
