#!/usr/bin/env bash
# Creates .venv with everything the platform and its tests need, at the versions of constraints.txt
# (the one version set the GPU image installs too: docs/install.md). torch/torchvision go first so
# that pip settles the multi-GB CUDA build once and resolves the rest around it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# pip on some machines lists extra local indexes that do not exist; its warnings about them are noise.
pip_install() {
  .venv/bin/python -m pip install --quiet -c constraints.txt "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# the versions are resolved for one Python (constraints.txt's "# python:" line): the image's and CI's
want=$(sed -n 's/^# python: //p' constraints.txt)
have=$(.venv/bin/python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [ "$have" != "$want" ]; then
  echo "constraints.txt is resolved for Python $want but .venv has Python $have: remove .venv and run with PYTHON=python$want" >&2
  exit 2
fi
pip_install --upgrade pip
echo "installing torch + torchvision ($(grep -E '^torch(vision)?==' constraints.txt | tr '\n' ' ')) ..."
pip_install torch torchvision
echo "installing the project and its dependencies ..."
pip_install -e '.[dev]'
echo "environment ready: $(pwd)/.venv"
