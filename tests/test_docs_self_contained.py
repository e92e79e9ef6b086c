"""The documentation stands on its own: every page a doc or a docstring points to is in the
repository, and nothing points at notes that live outside it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".sh", ".txt", ".tpl", ".json", ".cfg"}
# Upstream CRD files are third-party data, kept byte-identical (infra/k8s/crds/README.md).
THIRD_PARTY = (REPO / "infra" / "k8s" / "crds",)
OUTSIDE = re.compile(r"DESIGN\.md|STACK\.md|STYLE\.md|field[- ]notes|\.\./shared|/work/shared|/work/main")


def repository_files() -> list[Path]:
    skip = {".git", ".venv", "node_modules", "__pycache__", ".hypothesis", ".pytest_cache", "runs", "mlruns"}
    files = []
    for path in REPO.rglob("*"):
        parts = set(path.relative_to(REPO).parts)
        if path.is_file() and path.suffix in TEXT_SUFFIXES and not parts & skip and not path.name.endswith(".egg-info") \
                and not any(folder in path.parents for folder in THIRD_PARTY):
            files.append(path)
    return files


def test_no_file_points_at_notes_outside_the_repository():
    this_file = Path(__file__).resolve()
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
             for path in repository_files() if path != this_file
             for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
             if OUTSIDE.search(line)]
    assert not found, "\n".join(found)


def test_every_docs_page_named_anywhere_exists():
    named = {(path.relative_to(REPO), name)
             for path in repository_files()
             for name in re.findall(r"docs/([A-Za-z0-9_-]+\.md)", path.read_text(encoding="utf-8", errors="replace"))}
    missing = [f"{where}: docs/{name}" for where, name in sorted(named) if not (REPO / "docs" / name).is_file()]
    assert not missing, "\n".join(missing)


def test_relative_links_in_markdown_resolve():
    broken = []
    for page in [p for p in repository_files() if p.suffix == ".md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, "\n".join(broken)
