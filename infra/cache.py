"""Build-once folders: artefacts (the tiny model, synthetic datasets, downloaded checkpoint models)
are built in a private folder and renamed into place, so concurrent or interrupted builds never
leave a half-built folder where a later run would take it for a finished one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def build_once(final: Path, done_marker: str, build: Callable[[Path], None]) -> Path:
    """`final`, built by `build(staging_folder)` unless `final/done_marker` already exists."""
    final = Path(final)
    if (final / done_marker).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=final.parent))
    try:
        build(staging)
        if final.exists() and not (final / done_marker).exists():
            shutil.rmtree(final, ignore_errors=True)  # debris from an older, non-atomic layout
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / done_marker).exists():  # another process finished first: use its build
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
