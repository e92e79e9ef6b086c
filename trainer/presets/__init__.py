"""Run presets shipped with the package: `stvg train demo`, `stvg train qwen25vl-7b-stvg-o1`."""

from __future__ import annotations

from pathlib import Path

PRESET_DIR = Path(__file__).parent
DEFAULT = "demo"


def names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve(config: str | None) -> Path:
    """A config argument -> YAML path: a file path, a preset name, or None for the embedded demo."""
    from infra.config import did_you_mean
    from infra.errors import ConfigError

    if config is None:
        return PRESET_DIR / f"{DEFAULT}.yaml"
    path = Path(config)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {config!r} does not exist")
        return path
    preset = PRESET_DIR / f"{config}.yaml"
    if not preset.is_file():
        raise ConfigError(f"{config!r} is neither a config file nor a preset; presets: {', '.join(names())}"
                          f"{did_you_mean(config, names())}")
    return preset
