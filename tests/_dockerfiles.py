"""Reading the Dockerfiles under docker/ (no Docker engine here: their contracts are checked statically)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*[!e]"))  # not the *.dockerignore files


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def build_args(path: Path) -> dict[str, str]:
    """ARG defaults of a Dockerfile ("" for an ARG without one)."""
    found = {}
    for word, args in instructions(path):
        if word == "ARG":
            name, _, default = args.partition("=")
            found[name] = default
    return found
