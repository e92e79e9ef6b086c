"""What a run needs before any worker starts: absolute paths, the model's source, the data splits.

The driver reads the annotations and hands samples to the workers by value; what other nodes read
themselves is named by URIs they can reach (the model: rollout.models.source; videos: local or
shared paths, s3:// or synthetic://, resolved by each node's rollout.video_cache). Whatever is built
here is cached under `model.cache_dir` on this node and built atomically (private folder, then
rename), so concurrent or interrupted runs never see half-built artefacts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

from infra.data.dataset_cache import AnnotationFile, DatasetCacheFile, beside, fetch_annotations
from infra.data.sample import GroundingSample
from infra.data.synth import SyntheticSettings
from infra.errors import UserError
from rewards.client import resolve_reward_mode
from rollout.models.source import ModelSource, resolve_model_source
from trainer.config import RunConfig

log = logging.getLogger("stvg.data")


def resolve_paths(cfg: RunConfig) -> RunConfig:
    """Relative paths become absolute (Ray workers run in other folders); empty URIs get the run's;
    the node cache folders every process fills on its own node are named; reward.mode=auto is
    decided (here, once, so that the driver's log says what the run uses)."""
    run_dir = cfg.run_dir.resolve()
    checkpoint_uri = _absolute(cfg.checkpoint.uri or str(run_dir / "checkpoints"))
    model = dataclasses.replace(cfg.model, cache_dir=_absolute(cfg.model.cache_dir),
                                path=cfg.model.path if cfg.model.path == "tiny" else _absolute(cfg.model.path))
    data = dataclasses.replace(cfg.data, **{key: _absolute(getattr(cfg.data, key)) for key in DATA_PATHS})
    rollout = dataclasses.replace(cfg.rollout, video_cache_dir=_absolute(node_video_dir(cfg)))
    resume = cfg.resume if cfg.resume in ("never", "auto") else _absolute(cfg.resume)
    return dataclasses.replace(cfg, output_dir=str(run_dir), model=model, data=data, rollout=rollout, resume=resume,
                               reward=resolve_reward_mode(cfg.reward),
                               checkpoint=dataclasses.replace(cfg.checkpoint, uri=checkpoint_uri))


DATA_PATHS = ("train_annotations", "heldout_annotations", "video_root", "trajectories_dir", "tracks")
"""data.* keys that name files or folders: learner ranks build prompts from them in Ray Train's
own working folder, so a relative path must be fixed in the driver."""


def node_video_dir(cfg: RunConfig) -> str:
    """This node's video cache: rollout.video_cache_dir, by default model.cache_dir/videos."""
    return cfg.rollout.video_cache_dir or str(Path(cfg.model.cache_dir) / "videos")


def _absolute(path: str) -> str:
    return str(Path(path).resolve()) if path and "://" not in path else path


def resolve_model(cfg: RunConfig, option: str = "model.path") -> ModelSource:
    """What model.path names (the tiny model, a folder, a Hugging Face folder in S3, a checkpoint),
    checked now; every node materialises it itself with `.local_dir()` (rollout.models.source).
    `option` is how the user gave the path, for messages (e.g. `stvg eval --checkpoint`)."""
    import torch

    if not torch.cuda.is_available():  # building the tiny model imports DeepSpeed (through transformers),
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # which otherwise warns that it found no GPU
    return resolve_model_source(cfg.model.path, cfg.model.cache_dir, cfg.model.tiny_seed, option=option,
                                tiny_size=cfg.model.tiny_size)


def prepare_data(cfg: RunConfig) -> tuple[list[GroundingSample], list[GroundingSample]]:
    """(train, held-out) samples of the configured source. For task stvg-r1 every sample also gets
    candidate tracks and a target id (ensure_tracks)."""
    files = annotation_files(cfg)
    train, heldout = _read_split(cfg, "train", files["train"]), []
    if "heldout" in files:
        heldout = _read_split(cfg, "heldout", files["heldout"])
    if cfg.task == "stvg-r1":
        train = ensure_tracks(cfg, train, files["train"], "train")
        heldout = ensure_tracks(cfg, heldout, files["heldout"], "heldout") if heldout else heldout
    return train, heldout


def annotation_files(cfg: RunConfig) -> dict[str, AnnotationFile]:
    """The annotation file of each split ("train", and "heldout" when there is one), with a local
    copy: for synthetic data the generated set's annotations.json (built once on this node), for real
    data the file itself (an s3:// file fetched into the node cache). Per-dataset caches (tracks,
    difficulty) go beside them (infra.data.dataset_cache)."""
    data = cfg.data
    if data.source == "synthetic":
        from infra.data.synth import ANNOTATIONS, synthetic_dataset

        files = {}
        for split, settings in synthetic_splits(cfg).items():
            path = synthetic_dataset(settings, _synthetic_root(cfg), progress=not cfg.quiet) / ANNOTATIONS
            files[split] = AnnotationFile(str(path), path)
        return files
    files = {"train": fetch_annotations(data.train_annotations, cfg.model.cache_dir)}
    if data.heldout_annotations:
        files["heldout"] = fetch_annotations(data.heldout_annotations, cfg.model.cache_dir)
    return files


def synthetic_splits(cfg: RunConfig) -> dict[str, SyntheticSettings]:
    """The generator settings of each synthetic split (held-out uses seed + 1000)."""
    data = cfg.data
    shape = dict(width=data.synthetic_width, height=data.synthetic_height, fps=data.synthetic_fps,
                 scene=data.scene_options())
    splits = {"train": SyntheticSettings(data.synthetic_train_videos, data.synthetic_seed, **shape)}
    if data.synthetic_heldout_videos:
        splits["heldout"] = SyntheticSettings(data.synthetic_heldout_videos, data.synthetic_seed + 1000, **shape)
    return splits


def _synthetic_root(cfg: RunConfig) -> Path:
    """Where this node keeps synthetic datasets: inside its video cache, where rollout workers
    resolve `synthetic://` video URIs (rollout.video_cache), so the driver's node builds them once."""
    from rollout.video_cache import SYNTHETIC_DIR

    return Path(node_video_dir(cfg)) / SYNTHETIC_DIR


def _read_split(cfg: RunConfig, split: str, annotations: AnnotationFile) -> list[GroundingSample]:
    data = cfg.data
    if data.source == "synthetic":
        from infra.data.synth import load_synthetic_split

        return load_synthetic_split(synthetic_splits(cfg)[split], _synthetic_root(cfg))
    from infra.data.readers import read_annotations

    return read_annotations(data.source, annotations.local, video_root=data.video_root or None,
                            trajectories_dir=data.trajectories_dir or None, tracks=data.tracks or None,
                            skip_invalid=data.skip_invalid)


def ensure_tracks(cfg: RunConfig, samples: list[GroundingSample], annotations: AnnotationFile,
                  split: str) -> list[GroundingSample]:
    """STVG-R1 needs every sample's candidate tracks and target id. Tracks come from the dataset or
    data.tracks; samples still without any are tracked by data.tracker, once: the tracks are cached in
    `tracks_cache` (beside the annotations) and read back on later runs. Missing target ids are
    filled by the GT majority vote (infra.data.instances). A sample left without tracks is a
    UserError naming the fix; one whose target overlaps no track is too, unless data.skip_invalid
    (then it is dropped with a warning)."""
    from infra.data.instances import assign_target_ids

    missing = [s for s in samples if not s.tracks]
    if missing and not cfg.data.tracker:
        raise UserError(f"{len(missing)} of {len(samples)} {split} samples (first: {missing[0].id!r}) have no "
                        "candidate tracks; task=stvg-r1 draws every candidate object's id on the frames: give a "
                        "tracks file (data.tracks=FILE, docs/data.md) or let the run track the videos once "
                        "(data.tracker=colour-blobs or data.tracker=yolo)")
    if missing:
        with tracks_cache(cfg, annotations).synced() as cache:
            samples = _tracked(cfg, samples, cache)
    samples = assign_target_ids(samples)
    orphans = [s.id for s in samples if s.target_id is None]
    if orphans and not cfg.data.skip_invalid:
        raise UserError(f"{len(orphans)} of {len(samples)} {split} samples (first: {orphans[0]!r}) have no target "
                        "instance: their ground-truth boxes overlap none of the candidate tracks (or they have no "
                        "boxes); set data.skip_invalid=true to drop them, or give better tracks (data.tracks, "
                        "data.tracker)")
    if orphans:
        log.warning("dropped %d of %d %s samples without a target instance among their tracks (first: %s)",
                    len(orphans), len(samples), split, orphans[0])
        samples = [s for s in samples if s.target_id is not None]
    return samples


def tracks_cache(cfg: RunConfig, annotations: AnnotationFile) -> DatasetCacheFile:
    """Where data.tracker's tracks of `annotations` are cached: `<stem>.tracks-<tracker>[-<fps>fps].json`
    beside the annotation file, in the dataset's own storage (infra.data.dataset_cache)."""
    data = cfg.data
    rate = f"-{data.tracker_fps:g}fps" if data.tracker_fps else ""
    options = f"-{hashlib.sha1(json.dumps(data.tracker_options, sort_keys=True).encode()).hexdigest()[:8]}" \
        if data.tracker_options else ""
    return beside(annotations, f"{annotations.local.stem}.tracks-{data.tracker}{rate}{options}.json",
                  cfg.model.cache_dir)


def _tracked(cfg: RunConfig, samples: list[GroundingSample], cache: Path) -> list[GroundingSample]:
    """`samples` with the tracks of `cache` where they have none; the rest tracked now and cached."""
    from infra.data.trackers import build_tracker, iter_tracked
    from infra.data.tracks import read_tracks, tracks_to_json, write_tracks

    cached = read_tracks(cache) if cache.is_file() else {}
    filled, todo = [], []
    for s in samples:
        entry = None if s.tracks else cached.get(s.id)
        if entry is not None:  # an empty entry too: that video was tracked and nothing was found
            target = entry.target_id if entry.target_id is not None else s.target_id
            s = dataclasses.replace(s, tracks=entry.tracks, target_id=target)
        elif not s.tracks:
            todo.append(s)
        filled.append(s)
    if not todo:
        return filled
    from rollout.video_cache import VideoCache

    tracker = build_tracker(cfg.data.tracker, **cfg.data.tracker_options)
    videos = VideoCache(node_video_dir(cfg), cfg.rollout.video_cache_bytes)
    print(f"tracking {len(todo)} samples with {cfg.data.tracker} (once; cached in {cache})", flush=True)
    done: dict[str, GroundingSample] = {}
    skip = cfg.data.on_bad_video == "skip"
    try:
        for s in iter_tracked(todo, tracker, fps=cfg.data.tracker_fps or None, skip_bad_videos=skip,
                              local_video=lambda s: videos.local_path(s.video), progress=not cfg.quiet):
            done[s.id] = s
    finally:  # a video that fails ends the run, but what was tracked before it is kept for the rerun
        if done:
            entries = {key: tracks_to_json(e.tracks, e.target_id) for key, e in cached.items()}
            entries.update({sid: tracks_to_json(s.tracks or {}, s.target_id) for sid, s in done.items()})
            cache.parent.mkdir(parents=True, exist_ok=True)
            staging = cache.with_name(cache.name + f".{os.getpid()}.tmp")
            write_tracks(staging, entries)
            os.replace(staging, cache)
    # data.on_bad_video=skip: samples whose video the tracker could not read are left out (and not
    # cached, so a re-encoded video is tracked on the next run)
    left_out = {s.id for s in todo} - done.keys()
    if left_out:
        log.warning("left out %d of %d samples whose video could not be tracked (data.on_bad_video=skip; first: %s)",
                    len(left_out), len(filled), next(s.id for s in todo if s.id in left_out))
    return [done.get(s.id, s) for s in filled if s.id not in left_out]
