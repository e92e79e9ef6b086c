"""Print the project's dependencies from pyproject.toml, one per line, for a Docker build.

The GPU image cannot `pip install .` as is: vLLM pins its own torch / torchvision / transformers,
which conflict with the CPU development pins in pyproject.toml. The image installs vLLM first, then
the project's other dependencies (this script's output) under the versions vLLM chose, then the
project itself with `--no-deps`.

    python docker/project_deps.py --extra gpu --exclude torch torchvision transformers
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path


def requirement_name(requirement: str) -> str:
    """Normalised distribution name of a PEP 508 requirement ('ray[train]>=2' -> 'ray')."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def project_dependencies(pyproject: Path, extras: list[str], exclude: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"extra {extra!r} is not in {pyproject}; known: {', '.join(optional)}")
        requirements += optional[extra]
    dropped = {requirement_name(name) for name in exclude}
    return [req for req in requirements if requirement_name(req) not in dropped]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=Path(__file__).resolve().parents[1] / "pyproject.toml")
    parser.add_argument("--extra", action="append", default=[], help="also list this extra's dependencies")
    parser.add_argument("--exclude", nargs="*", default=[], help="distribution names to leave out")
    args = parser.parse_args(argv)
    for requirement in project_dependencies(args.pyproject, args.extra, args.exclude):
        print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main())
