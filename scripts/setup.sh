#!/usr/bin/env bash
# Create .venv with the tested stack (requirements-lock.txt) and edgekit installed editable. Safe to re-run.
# --extras also installs the optional routes (requirements-extras.txt: litert-torch for PyTorch -> TFLite).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" -r requirements-lock.txt
if [ "${1:-}" = "--extras" ]; then
  "${pip[@]}" -r requirements-extras.txt
fi
"${pip[@]}" --no-deps -e .
bash scripts/graphviz.sh
