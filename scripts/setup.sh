#!/usr/bin/env bash
# Creates .venv with everything the platform and its tests need (CPU build).
# torch/torchvision go first, pinned, so that pip takes the local files and never
# resolves another multi-GB build for a looser requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install --quiet -e '.[dev]'
echo "environment ready: $(pwd)/.venv"
