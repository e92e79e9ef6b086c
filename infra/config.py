"""Typed run configs: dataclasses loaded with omegaconf from YAML plus dotted `key=value` overrides.

Every component owns a config dataclass with one docstring per field and validates itself in
`__post_init__` with the helpers below, so a bad value fails up front with a message that names
the key and the allowed values. Nothing downstream re-defaults or mutates a config.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Sequence, TypeVar

from infra.errors import ConfigError

T = TypeVar("T")


def check_choice(key: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


def check_range(key: str, value: float, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> None:
    bad = (low is not None and (value <= low if low_open else value < low)) or \
          (high is not None and (value >= high if high_open else value > high))
    if bad:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        raise ConfigError(f"{key}={value!r} is out of range; it must be {' and '.join(p for p in (lo, hi) if p)}")


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = (),
                derived: dict[str, str] | None = None) -> T:
    """Build `schema` from its defaults, then the YAML file at `path`, then `key=value` overrides.

    `derived` maps a dotted key to the key it follows (e.g. {"grpo.temperature":
    "rollout.temperature"}): unless the file or an override sets it, it takes that key's value, so
    two sections that must agree are written once.
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.structured(schema)
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"config file {str(path)!r} does not exist")
            try:
                from_file = OmegaConf.load(path)
            except Exception as err:  # yaml errors come in several types
                raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key=value (e.g. grpo.group_size=8)")
        explicit = OmegaConf.from_dotlist(list(overrides)) if overrides else OmegaConf.create()
        if path is not None:
            explicit = OmegaConf.merge(from_file, explicit)
        merged = OmegaConf.merge(merged, explicit)
        for item in overrides:  # `key={...}` on the command line replaces a dict, merging cannot clear one
            key = item.split("=", 1)[0]
            value = OmegaConf.select(OmegaConf.from_dotlist([item]), key)
            if isinstance(value, DictConfig):
                OmegaConf.update(merged, key, value, merge=False)
        for key, source in (derived or {}).items():
            if OmegaConf.select(explicit, key, default=None) is None:
                OmegaConf.update(merged, key, OmegaConf.select(merged, source), merge=False)
        return OmegaConf.to_object(merged)  # runs every __post_init__
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err, schema)) from None


def _describe(err: Exception, schema: type) -> str:
    key = getattr(err, "full_key", None)
    msg = str(err).splitlines()[0]
    if type(err).__name__ == "ConfigKeyError" and key:
        keys = dotted_keys(schema)
        sections = {k.rsplit(".", 1)[0] for k in keys if "." in k}  # 'grpoo' is closest to 'grpo'
        return f"unknown config key {key!r}{did_you_mean(key, [*keys, *sorted(sections)])}"
    if key:
        return f"bad value for {key!r}: {msg}"
    return msg


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest of `choices` to a mistyped `word` ('' when none is close)."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def dotted_keys(schema: type, prefix: str = "") -> list[str]:
    """Every key of a config dataclass tree as users write it: 'grpo.group_size', 'name', ..."""
    import typing

    hints = typing.get_type_hints(schema)
    keys = []
    for f in dataclasses.fields(schema):
        kind = hints.get(f.name)
        if dataclasses.is_dataclass(kind):
            keys += dotted_keys(kind, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def to_dict(config: Any) -> dict[str, Any]:
    """The resolved config as plain data (for MLflow params, checkpoints and manifests)."""
    return dataclasses.asdict(config)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: the dotted keys users write as overrides."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out
