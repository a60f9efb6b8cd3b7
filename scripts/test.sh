#!/usr/bin/env bash
# Set up, then run the test suite (pass pytest options through, e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --extras
export QT_QPA_PLATFORM=offscreen TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest "$@"
