#!/usr/bin/env bash
# Create .venv with the tested stack (requirements-lock.txt) and edgekit installed editable. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-lock.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
