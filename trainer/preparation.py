"""What a run needs before any worker starts: absolute paths, the model directory, the data splits.

Everything built here is cached under `model.cache_dir` and built atomically (private folder, then
rename), so concurrent or interrupted runs never see half-built artefacts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

from infra.cache import build_once
from infra.data.sample import GroundingSample
from infra.errors import UserError
from trainer.config import RunConfig

log = logging.getLogger("stvg.data")


def resolve_paths(cfg: RunConfig) -> RunConfig:
    """Relative paths become absolute (Ray workers run in other folders); empty URIs get the run's."""
    run_dir = cfg.run_dir.resolve()
    checkpoint_uri = _absolute(cfg.checkpoint.uri or str(run_dir / "checkpoints"))
    model = dataclasses.replace(cfg.model, cache_dir=_absolute(cfg.model.cache_dir),
                                path=cfg.model.path if cfg.model.path == "tiny" else _absolute(cfg.model.path))
    data = dataclasses.replace(cfg.data, **{key: _absolute(getattr(cfg.data, key)) for key in DATA_PATHS})
    return dataclasses.replace(cfg, output_dir=str(run_dir), model=model, data=data,
                               checkpoint=dataclasses.replace(cfg.checkpoint, uri=checkpoint_uri))


DATA_PATHS = ("train_annotations", "heldout_annotations", "video_root", "trajectories_dir", "tracks")
"""data.* keys that name files or folders: learner ranks build prompts from them in Ray Train's
own working folder, so a relative path must be fixed in the driver."""


def _absolute(path: str) -> str:
    return str(Path(path).resolve()) if path and "://" not in path else path


def prepare_model(cfg: RunConfig) -> str:
    """A local Hugging Face model folder: the tiny model, a folder, or the `hf/` export of a
    checkpoint named by URI (e.g. an SFT run's `.../checkpoints/step-000200`, or its root)."""
    if cfg.model.path == "tiny":
        from rollout.models.tiny import tiny_model_dir

        return str(tiny_model_dir(Path(cfg.model.cache_dir) / "models", seed=cfg.model.tiny_seed))
    if _is_checkpoint(cfg.model.path):
        return str(checkpoint_model(cfg.model.path, Path(cfg.model.cache_dir)))
    path = Path(cfg.model.path)
    if not (path / "config.json").is_file():
        raise UserError(f"model.path={cfg.model.path!r} is not a Hugging Face checkpoint folder (no config.json); "
                        "use a local folder (weights are never downloaded at run time) or model.path=tiny")
    return str(path)


def _is_checkpoint(path: str) -> bool:
    from trainer.checkpointing import HF_DIR

    if path.startswith("s3://"):
        return True
    folder = Path(path)
    return (folder / "manifest.json").is_file() or any(folder.glob(f"step-*/{HF_DIR}")) or \
        any(folder.glob("step-*/manifest.json"))


def checkpoint_model(uri: str, cache_dir: Path) -> Path:
    """Download (once) the consolidated model of the checkpoint at `uri`; return its folder. The
    cache keys on the checkpoint's contents too: a step saved again (after a resume) is fetched anew."""
    import hashlib

    from trainer.checkpointing import HF_DIR, open_checkpoint_uri

    store, ref = open_checkpoint_uri(uri)
    final = cache_dir / "checkpoints" / hashlib.sha1(f"{ref.uri}#{ref.fingerprint}".encode()).hexdigest()[:16]

    def download(staging: Path) -> None:
        store.restore(ref, staging, only=f"{HF_DIR}/")
        if not (staging / HF_DIR / "config.json").is_file():
            raise UserError(f"checkpoint {ref.uri} has no {HF_DIR}/ model (it was saved with "
                            "checkpoint.export_hf=false); evaluate or start from one that has")

    build_once(final, f"{HF_DIR}/config.json", download)
    return final / HF_DIR


def prepare_data(cfg: RunConfig) -> tuple[list[GroundingSample], list[GroundingSample]]:
    """(train, held-out) samples of the configured source. For task stvg-r1 every sample also gets
    candidate tracks and a target id (ensure_tracks)."""
    files = annotation_files(cfg)
    train, heldout = _read_split(cfg, files["train"]), []
    if "heldout" in files:
        heldout = _read_split(cfg, files["heldout"])
    if cfg.task == "stvg-r1":
        train = ensure_tracks(cfg, train, files["train"], "train")
        heldout = ensure_tracks(cfg, heldout, files["heldout"], "heldout") if heldout else heldout
    return train, heldout


def annotation_files(cfg: RunConfig) -> dict[str, Path]:
    """The local annotation file of each split ("train", and "heldout" when there is one): for
    synthetic data the generated set's annotations.json (built once), for real data the file itself
    (an s3:// file fetched once into the cache). Per-dataset caches (tracks, difficulty) go beside it."""
    data = cfg.data
    if data.source == "synthetic":
        files = {"train": _synthetic(cfg, "train", data.synthetic_train_videos, data.synthetic_seed)}
        if data.synthetic_heldout_videos:
            files["heldout"] = _synthetic(cfg, "heldout", data.synthetic_heldout_videos, data.synthetic_seed + 1000)
        return files
    files = {"train": Path(_local(data.train_annotations, cfg))}
    if data.heldout_annotations:
        files["heldout"] = Path(_local(data.heldout_annotations, cfg))
    return files


def _read_split(cfg: RunConfig, path: Path) -> list[GroundingSample]:
    data = cfg.data
    if data.source == "synthetic":
        from infra.data.synth import load_synthetic

        return load_synthetic(path.parent)
    from infra.data.readers import read_annotations

    return read_annotations(data.source, path, video_root=data.video_root or None,
                            trajectories_dir=data.trajectories_dir or None, tracks=data.tracks or None,
                            skip_invalid=data.skip_invalid)


def ensure_tracks(cfg: RunConfig, samples: list[GroundingSample], annotations: Path,
                  split: str) -> list[GroundingSample]:
    """STVG-R1 needs every sample's candidate tracks and target id. Tracks come from the dataset or
    data.tracks; samples still without any are tracked by data.tracker, once: the tracks are cached in
    `tracks_cache_path` (beside the annotations) and read back on later runs. Missing target ids are
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
        samples = _tracked(cfg, samples, tracks_cache_path(cfg, annotations))
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


def tracks_cache_path(cfg: RunConfig, annotations: Path) -> Path:
    """Where data.tracker's tracks of `annotations` are cached: `<stem>.tracks-<tracker>[-<fps>fps].json`
    beside the annotation file, or under model.cache_dir/tracks when that folder is not writable."""
    data = cfg.data
    rate = f"-{data.tracker_fps:g}fps" if data.tracker_fps else ""
    options = f"-{hashlib.sha1(json.dumps(data.tracker_options, sort_keys=True).encode()).hexdigest()[:8]}" \
        if data.tracker_options else ""
    name = f"{annotations.stem}.tracks-{data.tracker}{rate}{options}.json"
    if os.access(annotations.parent, os.W_OK):
        return annotations.parent / name
    key = hashlib.sha1(str(annotations.resolve()).encode()).hexdigest()[:12]
    return Path(cfg.model.cache_dir) / "tracks" / f"{key}-{name}"


def _tracked(cfg: RunConfig, samples: list[GroundingSample], cache: Path) -> list[GroundingSample]:
    """`samples` with the tracks of `cache` where they have none; the rest tracked now and cached."""
    from infra.data.trackers import build_tracker, track_samples
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
    videos = VideoCache(str(Path(cfg.model.cache_dir) / "videos"), cfg.rollout.video_cache_bytes)
    print(f"tracking {len(todo)} samples with {cfg.data.tracker} (once; cached in {cache})", flush=True)
    done = {s.id: s for s in track_samples(todo, tracker, fps=cfg.data.tracker_fps or None,
                                           local_video=lambda s: videos.local_path(s.video),
                                           progress=not cfg.quiet)}
    entries = {key: tracks_to_json(e.tracks, e.target_id) for key, e in cached.items()}
    entries.update({sid: tracks_to_json(s.tracks or {}, s.target_id) for sid, s in done.items()})
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = cache.with_name(cache.name + f".{os.getpid()}.tmp")
    write_tracks(staging, entries)
    os.replace(staging, cache)
    return [done.get(s.id, s) for s in filled]


def _synthetic(cfg: RunConfig, split: str, count: int, seed: int) -> Path:
    """The annotations.json of the synthetic split, generated once into the cache."""
    from infra.data.synth import generate

    data = cfg.data
    key = {"split": split, "videos": count, "seed": seed, "w": data.synthetic_width, "h": data.synthetic_height,
           "fps": data.synthetic_fps}
    final = Path(cfg.model.cache_dir) / "synthetic" / "-".join(f"{k}{v}" for k, v in key.items())

    def build(staging: Path) -> None:
        generate(staging, count, seed, width=data.synthetic_width, height=data.synthetic_height,
                 fps=data.synthetic_fps, progress=not cfg.quiet)
        (staging / "settings.json").write_text(json.dumps(key))

    build_once(final, "annotations.json", build)
    return final / "annotations.json"


def _local(path: str, cfg: RunConfig) -> str:
    """Annotation files may live in S3: fetch them once into the cache."""
    if not path.startswith("s3://"):
        return path
    from infra.storage.objects import open_store

    parent, _, name = path.rpartition("/")
    local = Path(cfg.model.cache_dir) / "annotations" / parent.replace("s3://", "").replace("/", "_") / name
    if not local.is_file():
        open_store(parent).get_files([(name, local)])
    return str(local)
