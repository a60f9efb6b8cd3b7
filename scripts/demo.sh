#!/usr/bin/env bash
# Set up, then run the bundled example: digits classifier -> TFLite, ONNX, OpenVINO at fp32 and int8.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/digits_demo.py "$@"
