"""What a run needs before any worker starts: absolute paths, the model directory, the data splits.

Everything built here is cached under `model.cache_dir` and built atomically (private folder, then
rename), so concurrent or interrupted runs never see half-built artefacts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

from infra.data.sample import GroundingSample
from infra.errors import UserError
from trainer.config import RunConfig


def resolve_paths(cfg: RunConfig) -> RunConfig:
    """Relative paths become absolute (Ray workers run in other folders); empty URIs get the run's."""
    run_dir = cfg.run_dir.resolve()
    checkpoint_uri = cfg.checkpoint.uri or str(run_dir / "checkpoints")
    if "://" not in checkpoint_uri:
        checkpoint_uri = str(Path(checkpoint_uri).resolve())
    model = dataclasses.replace(cfg.model, cache_dir=str(Path(cfg.model.cache_dir).resolve()))
    if cfg.model.path != "tiny" and "://" not in cfg.model.path:
        model = dataclasses.replace(model, path=str(Path(cfg.model.path).resolve()))
    return dataclasses.replace(cfg, output_dir=str(run_dir), model=model,
                               checkpoint=dataclasses.replace(cfg.checkpoint, uri=checkpoint_uri))


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
    """Download (once) the consolidated model of the checkpoint at `uri`; return its folder."""
    import hashlib

    from trainer.checkpointing import HF_DIR, open_checkpoint_uri

    store, ref = open_checkpoint_uri(uri)
    final = cache_dir / "checkpoints" / hashlib.sha1(ref.uri.encode()).hexdigest()[:16]
    if not (final / HF_DIR / "config.json").is_file():
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".downloading-", dir=final.parent))
        try:
            store.restore(ref, staging, only=f"{HF_DIR}/")
            if not (staging / HF_DIR / "config.json").is_file():
                raise UserError(f"checkpoint {ref.uri} has no {HF_DIR}/ model (it was saved with "
                                "checkpoint.export_hf=false); evaluate or start from one that has")
            shutil.rmtree(final, ignore_errors=True)
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final / HF_DIR


def prepare_data(cfg: RunConfig) -> tuple[list[GroundingSample], list[GroundingSample]]:
    """(train, held-out) samples of the configured source."""
    data = cfg.data
    if data.source == "synthetic":
        train = _synthetic(cfg, "train", data.synthetic_train_videos, data.synthetic_seed)
        heldout = (_synthetic(cfg, "heldout", data.synthetic_heldout_videos, data.synthetic_seed + 1000)
                   if data.synthetic_heldout_videos else [])
        return train, heldout
    from infra.data.readers import read_annotations

    def read(path: str) -> list[GroundingSample]:
        return read_annotations(data.source, _local(path, cfg), video_root=data.video_root or None,
                                trajectories_dir=data.trajectories_dir or None, tracks=data.tracks or None,
                                skip_invalid=data.skip_invalid)

    train = read(data.train_annotations)
    heldout = read(data.heldout_annotations) if data.heldout_annotations else []
    return train, heldout


def _synthetic(cfg: RunConfig, split: str, count: int, seed: int) -> list[GroundingSample]:
    from infra.data.synth import generate, load_synthetic

    data = cfg.data
    key = {"split": split, "videos": count, "seed": seed, "w": data.synthetic_width, "h": data.synthetic_height,
           "fps": data.synthetic_fps}
    final = Path(cfg.model.cache_dir) / "synthetic" / "-".join(f"{k}{v}" for k, v in key.items())
    if not (final / "annotations.json").is_file():
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=final.parent))
        try:
            generate(staging, count, seed, width=data.synthetic_width, height=data.synthetic_height,
                     fps=data.synthetic_fps, progress=not cfg.quiet)
            (staging / "settings.json").write_text(json.dumps(key))
            try:
                os.rename(staging, final)
            except OSError:
                if not (final / "annotations.json").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return load_synthetic(final)


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
