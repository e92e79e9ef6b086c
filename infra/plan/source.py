"""Where the plan reads a model's config.json (and, when there is one, its tokenizer) from.

`model.path` may be `tiny` (the tiny model's config and tokenizer, built without weights), a local
Hugging Face folder, a checkpoint (its `hf/` export; the latest step of a checkpoint root), or an
`s3://` prefix of either (only config.json is read, through infra.storage). A path that cannot be
read here, e.g. one mounted only in the training pods, falls back to the shipped config whose name
it carries (`/models/Qwen2.5-VL-7B-Instruct` -> qwen2.5-vl-7b); `--model-config` names a shipped
config or a config.json file explicitly. No weights are read.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from infra.errors import UserError

SHIPPED_DIR = Path(__file__).parent / "models"
_SHIPPED_NAME = re.compile(r"qwen2\.5-vl-(\d+)b", re.IGNORECASE)


def shipped_names() -> list[str]:
    return sorted((p.stem for p in SHIPPED_DIR.glob("*.json")), key=lambda n: int(_SHIPPED_NAME.match(n).group(1)))


@dataclass
class ModelFiles:
    config: dict[str, Any]
    where: str
    """What was read, for the report: a path, a URI, or `shipped qwen2.5-vl-7b (...)`."""
    tokenizer: Optional[Any] = None
    """A transformers tokenizer with the model's chat template, or None (text tokens are estimated)."""


def find_model(path: str, *, tiny_seed: int = 0, tiny_size: str = "small", override: str = "") -> ModelFiles:
    """The config (and tokenizer) to plan `model.path=path` with; `override` is --model-config."""
    if override:
        return _override(override)
    if path == "tiny":
        return _tiny(tiny_seed, tiny_size)
    try:
        found = _read_s3(path) if path.startswith("s3://") else _read_local(Path(path))
    except UserError as err:
        found, reason = None, str(err)
    else:
        reason = "no config.json there"
    if found is not None:
        return found
    shipped = _shipped_by_name(path)
    if shipped is None:
        raise UserError(f"model.path={path!r} cannot be read here ({reason}) and its name matches no shipped "
                        f"config ({', '.join(shipped_names())}); pass --model-config with a config.json file "
                        "or one of those names")
    shipped.where += f"; model.path {path} is not readable here"
    return shipped


def _override(value: str) -> ModelFiles:
    if value in shipped_names():
        return _shipped(value)
    file = Path(value)
    if file.is_dir():
        file = file / "config.json"
    if not file.is_file():
        raise UserError(f"--model-config {value!r} is neither a config.json file nor a shipped config "
                        f"({', '.join(shipped_names())})")
    return ModelFiles(_load_json(file), str(file), _tokenizer(file.parent))


def _shipped(name: str) -> ModelFiles:
    return ModelFiles(_load_json(SHIPPED_DIR / f"{name}.json"), f"shipped {name} (published shapes)")


def _shipped_by_name(path: str) -> Optional[ModelFiles]:
    match = _SHIPPED_NAME.search(Path(path.rstrip("/")).name)
    name = f"qwen2.5-vl-{match.group(1)}b" if match else None
    return _shipped(name) if name in shipped_names() else None


@functools.lru_cache(maxsize=4)
def _tiny(seed: int, size: str = "small") -> ModelFiles:
    from rollout.models.tiny import VOCAB_SIZE, build_tokenizer, tiny_config, tiny_name, tiny_size_arguments

    tokenizer = build_tokenizer(VOCAB_SIZE, seed)  # about a second, no torch
    config = tiny_config(tokenizer, **tiny_size_arguments(size))
    return ModelFiles({"model_type": "qwen2_5_vl", **config}, tiny_name(seed, size), tokenizer)


def _read_local(folder: Path) -> Optional[ModelFiles]:
    for candidate in (folder / "config.json", folder / "hf" / "config.json"):
        if candidate.is_file():
            return ModelFiles(_load_json(candidate), str(candidate), _tokenizer(candidate.parent))
    if folder.is_dir() and any(folder.glob("step-*")):  # a checkpoint root: its latest step
        latest = _latest_checkpoint(str(folder))
        return _read_local(Path(latest)) if latest else None
    return None


def _read_s3(uri: str) -> Optional[ModelFiles]:
    from infra.storage import open_store

    store = open_store(uri)
    for key in ("config.json", "hf/config.json"):
        if key in store.list(key):
            return ModelFiles(_download_json(store, key), f"{uri.rstrip('/')}/{key}")
    if store.list("step-"):  # a checkpoint root: its latest step
        latest = _latest_checkpoint(uri)
        return _read_s3(latest) if latest else None
    return None


def _latest_checkpoint(root: str) -> Optional[str]:
    from infra.storage import open_checkpoints

    ref = open_checkpoints(root, keep_last=0).latest()
    return ref.uri if ref is not None else None


def _download_json(store, key: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stvg-plan-") as tmp:
        local = Path(tmp) / "config.json"
        store.get_files([(key, local)])
        return _load_json(local)


def _load_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{file} is not a readable JSON config: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{file} is not a JSON object")
    return data


def _tokenizer(folder: Path) -> Optional[Any]:
    """The folder's tokenizer with the processor's chat template, when tokenizer.json is there
    (transformers' tokenizer classes load without torch; AutoTokenizer would import it)."""
    if not (folder / "tokenizer.json").is_file():
        return None
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder))
    processor_template = folder / "chat_template.json"  # the processor's, when it has its own file
    if processor_template.is_file():
        tokenizer.chat_template = json.loads(processor_template.read_text())["chat_template"]
    return tokenizer if tokenizer.chat_template else None
