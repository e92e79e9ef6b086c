#!/usr/bin/env bash
# Runs the whole test suite (unit + end-to-end) in the project's virtualenv.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/rewards -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "no .venv here: run 'bash scripts/setup.sh' first" >&2
  exit 2
fi
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false RAY_USAGE_STATS_ENABLED=0 \
       MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
exec .venv/bin/python -m pytest -q "$@"
