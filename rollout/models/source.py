"""Where a run's model comes from, resolved once in the driver and materialised on every node.

`resolve_model_source(path, ...)` in the driver turns `model.path` into a ModelSource, a small
picklable description that travels to learner ranks and rollout actors on other nodes. Each of
them calls `source.local_dir()`, which gives a Hugging Face model folder on *its own* node:

- `tiny`: the random-initialised test model, built from its seed in this node's cache (the build is
  byte-identical everywhere; the driver's digest is checked, so a node with other library versions
  fails loudly instead of training another model);
- a local folder: used in place; on a multi-node run it must lie under `cluster.shared_paths`
  (a mount every node has at the same path), which the driver checks;
- `s3://bucket/prefix` holding a plain Hugging Face folder (config.json, safetensors shards,
  tokenizer and processor files): fetched into this node's cache (infra.storage.folders);
- an stvg checkpoint (`.../step-000200`, or a checkpoint root meaning its latest step), local or in
  S3: its consolidated `hf/` model fetched into this node's cache, checked against the manifest's
  SHA-256 digests.

The driver pins what it saw (the tiny model's digest, the S3 listing's fingerprint, the checkpoint
step and its manifest fingerprint), so every process of the run loads the same weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from infra.cache import build_once
from infra.errors import UserError
from infra.storage.checkpoints import HF_DIR, MANIFEST, open_checkpoint_uri
from infra.storage.uris import parse_location

KINDS = ("tiny", "folder", "s3-folder", "checkpoint")


@dataclass(frozen=True)
class ModelSource:
    kind: str
    """tiny, folder (a local or shared path), s3-folder (a Hugging Face folder in S3) or checkpoint."""
    uri: str
    """The folder, the S3 prefix or the checkpoint step's URI; 'tiny' for the tiny model."""
    cache_dir: str
    """This node's cache root (model.cache_dir); every node fills its own."""
    tiny_seed: int = 0
    """kind=tiny: the seed of the weights and tokenizer."""
    tiny_size: str = "small"
    """kind=tiny: its size (rollout.models.tiny.TINY_SIZES)."""
    fingerprint: str = ""
    """What the driver saw: the tiny model's digest, the S3 listing's or the checkpoint manifest's."""

    def local_dir(self, progress: bool = True) -> str:
        """A Hugging Face model folder on this node, fetched or built here once per node."""
        cache = Path(self.cache_dir)
        if self.kind == "tiny":
            folder = _tiny_dir(cache, self.tiny_seed, self.tiny_size)
            digest = folder_digest(folder)
            if self.fingerprint and digest != self.fingerprint:
                raise UserError(f"the tiny model built on this node ({folder}) differs from the driver's (digest "
                                f"{digest[:12]} vs {self.fingerprint[:12]}): the nodes run different library "
                                "versions; use one image for every node")
            return str(folder)
        if self.kind == "folder":
            from infra.storage.folders import local_folder

            return str(local_folder(self.uri, cache, what="model.path"))
        if self.kind == "s3-folder":
            from infra.storage.folders import local_folder

            return str(local_folder(self.uri, cache / "models", fingerprint=self.fingerprint, progress=progress,
                                    what="model.path"))
        return str(checkpoint_model(self.uri, cache, fingerprint=self.fingerprint))

    def describe(self) -> str:
        from rollout.models.tiny import tiny_name

        return tiny_name(self.tiny_seed, self.tiny_size) if self.kind == "tiny" else self.uri


def as_model_source(model: "ModelSource | str | Path") -> ModelSource:
    """`model` itself, or a ModelSource for a model folder that is already local (tools, tests)."""
    if isinstance(model, ModelSource):
        return model
    folder = Path(model).resolve()
    return ModelSource("folder", str(folder), cache_dir=str(folder.parent))


def resolve_model_source(path: str, cache_dir: str, tiny_seed: int = 0, option: str = "model.path",
                         tiny_size: str = "small") -> ModelSource:
    """What `model.path` names, checked now (in the driver) with one clear line if it is unusable;
    `option` is the setting the line names (`stvg eval --checkpoint` sets model.path)."""
    if path == "tiny":
        folder = _tiny_dir(Path(cache_dir), tiny_seed, tiny_size)
        return ModelSource("tiny", "tiny", cache_dir, tiny_seed, tiny_size, folder_digest(folder))
    location = parse_location(path)
    if location.scheme == "s3":
        from infra.storage.objects import open_store

        listing = open_store(path).list("")
        if "config.json" in listing:
            from infra.storage.folders import folder_fingerprint

            return ModelSource("s3-folder", location.uri, cache_dir, fingerprint=folder_fingerprint(path))
        if MANIFEST in listing or any(key.startswith("step-") and key.endswith("/" + MANIFEST) for key in listing):
            return _checkpoint_source(location.uri, cache_dir)
        raise UserError(f"{option}={path}: neither a Hugging Face model folder (no config.json under it) nor an "
                        f"stvg checkpoint (no {MANIFEST}); upload a model with `stvg upload` (docs/storage.md)")
    folder = location.path
    if not folder.exists():
        raise UserError(f"{option}={path!r} does not exist; {_what_it_takes(option)}")
    if (folder / MANIFEST).is_file() or any(folder.glob(f"step-*/{MANIFEST}")):
        return _checkpoint_source(str(folder), cache_dir)
    if not (folder / "config.json").is_file():
        raise UserError(f"{option}={path!r} is not a Hugging Face model folder (no config.json) nor an stvg "
                        f"checkpoint (no {MANIFEST}); {_what_it_takes(option)}")
    return ModelSource("folder", str(folder), cache_dir)


def _what_it_takes(option: str) -> str:
    if option == "model.path":
        return "use a model folder, s3://bucket/prefix, a checkpoint URI, or model.path=tiny"
    return ("give a run's checkpoint folder (runs/<name>/checkpoints, or one of its step-* folders) or an "
            "s3:// checkpoint URI")


def checkpoint_model(uri: str, cache_dir: Path, fingerprint: str = "") -> Path:
    """Download (once per node) the consolidated model of the checkpoint at `uri`; return its folder.
    The cache keys on the checkpoint's contents too: a step saved again (after a resume) is fetched
    anew. `fingerprint` (the driver's) must still match, or the checkpoint changed under the run."""
    store, ref = open_checkpoint_uri(uri)
    if fingerprint and ref.fingerprint != fingerprint:
        raise UserError(f"checkpoint {ref.uri} was saved again after the run started; restart the run to use "
                        "the new one, or point model.path at another step")
    final = Path(cache_dir) / "checkpoints" / hashlib.sha1(f"{ref.uri}#{ref.fingerprint}".encode()).hexdigest()[:16]

    def download(staging: Path) -> None:
        store.restore(ref, staging, only=f"{HF_DIR}/")
        if not (staging / HF_DIR / "config.json").is_file():
            raise UserError(f"checkpoint {ref.uri} has no {HF_DIR}/ model (it was saved with "
                            "checkpoint.export_hf=false); evaluate or start from one that has")

    build_once(final, f"{HF_DIR}/config.json", download)
    return final / HF_DIR


def folder_digest(folder: Path) -> str:
    """SHA-256 over every file's relative path and bytes (for small folders such as the tiny model)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _tiny_dir(cache: Path, seed: int, size: str = "small") -> Path:
    from rollout.models.tiny import tiny_model_dir, tiny_size_arguments

    return tiny_model_dir(cache / "models", seed=seed, **tiny_size_arguments(size))


def _checkpoint_source(uri: str, cache_dir: str) -> ModelSource:
    _, ref = open_checkpoint_uri(uri)  # the latest step when `uri` is a checkpoint root: pinned for the run
    return ModelSource("checkpoint", ref.uri, cache_dir, fingerprint=ref.fingerprint)
