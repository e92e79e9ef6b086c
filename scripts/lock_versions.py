"""Re-resolve the locked part of constraints.txt from its chosen part.

constraints.txt has two parts. The first, above RESOLVED_MARKER, is chosen by hand: vLLM and the
versions it dictates, the project's training stack. The second is every other distribution that
vLLM plus the project (with its `dev` extra) resolve to under those choices, written by this
script so the test suite (scripts/setup.sh) and the GPU image (docker/Dockerfile.train) install
the very same versions of every package they share. Run it after editing the chosen part or the
dependencies in pyproject.toml:

    .venv/bin/python scripts/lock_versions.py        # needs the package index; about a minute

It asks pip to resolve without installing anything (`pip install --dry-run --ignore-installed
--report`), on Linux x86_64 under the Python the image and CI run (constraints.txt's header), and
rewrites the file's second part, and docker/vllm-requires.txt (vLLM's own requirements, from its
wheel's metadata). Distributions only built from source on GPUs (flash-attn) stay in
the chosen part: their metadata cannot be prepared without CUDA.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
VLLM_REQUIRES = REPO / "docker" / "vllm-requires.txt"
RESOLVED_MARKER = "# ---- resolved by scripts/lock_versions.py"
PYTHON_LINE = re.compile(r"^# python: (\d+\.\d+)$", re.M)
PROJECT = "stvg-rl"


def normalise(name: str) -> str:
    """PEP 503 name: 'Flash_Attn' -> 'flash-attn'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_constraints(text: str) -> tuple[str, str]:
    """(chosen part, resolved part) of constraints.txt's text."""
    head, marker, tail = text.partition(RESOLVED_MARKER)
    if not marker:
        raise SystemExit(f"{CONSTRAINTS} has no line starting {RESOLVED_MARKER!r}")
    return head, marker + tail


def pins(text: str) -> dict[str, str]:
    """{normalised name: version} of the `name==version` lines of a constraints text."""
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"constraint {line!r} is not of the form name==version")
            found[normalise(name)] = version.strip()
    return found


def resolved_lines(report: dict, chosen: dict[str, str]) -> list[str]:
    """`name==version` for every distribution pip's --report would install, except the project
    itself and the chosen ones, sorted by name."""
    found = {}
    for item in report["install"]:
        name, version = normalise(item["metadata"]["name"]), item["metadata"]["version"]
        if name == PROJECT or name in chosen:
            continue
        found[name] = version
    return [f"{name}=={found[name]}" for name in sorted(found)]


def vllm_requires(report: dict) -> str:
    """docker/vllm-requires.txt: the resolved vLLM's own requirements (its wheel's Requires-Dist,
    extras left out), what tests/test_version_set.py holds constraints.txt against."""
    item = next(i for i in report["install"] if normalise(i["metadata"]["name"]) == "vllm")
    version = item["metadata"]["version"]
    requires = [r for r in item["metadata"].get("requires_dist", []) if "extra ==" not in r]
    header = (f"# Requires-Dist of vllm {version} (its wheel's METADATA, extras left out), written by\n"
              "# scripts/lock_versions.py. tests/test_version_set.py checks constraints.txt against it.\n"
              f"# release: vllm=={version}\n")
    return header + "\n".join(requires) + "\n"


def resolve(chosen_text: str, python: str) -> dict:
    """pip's installation report for vLLM + the project[dev] under the chosen pins."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != python or sys.platform != "linux" or platform.machine() != "x86_64":
        raise SystemExit(f"resolve on Linux x86_64 with Python {python} (the image's and CI's); "
                         f"this is {sys.platform} {platform.machine()} Python {here}")
    with tempfile.TemporaryDirectory() as tmp:
        chosen_file, report_file = Path(tmp) / "chosen.txt", Path(tmp) / "report.json"
        chosen_file.write_text(chosen_text, encoding="utf-8")
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report_file), "-c", str(chosen_file), "vllm", "-e", f"{REPO}[dev]"],
                       check=True)
        return json.loads(report_file.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints", type=Path, default=CONSTRAINTS)
    args = parser.parse_args(argv)
    text = args.constraints.read_text(encoding="utf-8")
    chosen_text, _ = split_constraints(text)
    python = PYTHON_LINE.search(chosen_text)
    if python is None:
        raise SystemExit(f"{args.constraints} names no '# python: X.Y' line in its chosen part")
    chosen = pins(chosen_text)
    report = resolve(chosen_text, python.group(1))
    lines = resolved_lines(report, chosen)
    VLLM_REQUIRES.write_text(vllm_requires(report), encoding="utf-8")
    resolved = (f"{RESOLVED_MARKER} from the lines above (vLLM + the project's dev extra, "
                f"Python {python.group(1)}, Linux x86_64); do not edit by hand ----\n")
    args.constraints.write_text(chosen_text + resolved + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"{args.constraints}: {len(chosen)} chosen, {len(lines)} resolved; {VLLM_REQUIRES} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
