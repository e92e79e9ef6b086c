#!/usr/bin/env bash
# Creates .venv with everything the platform and its tests need (CPU build).
# torch/torchvision go first, pinned, so that pip takes the local files and never
# resolves another multi-GB build for a looser requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# pip on some machines lists extra local indexes that do not exist; its warnings about them are noise.
pip_install() {
  .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pip_install --upgrade pip
echo "installing torch 2.14.1 + torchvision 0.29.1 ..."
pip_install torch==2.14.1 torchvision==0.29.1
echo "installing the project and its dependencies ..."
pip_install -e '.[dev]'
echo "environment ready: $(pwd)/.venv"
