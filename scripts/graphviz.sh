#!/usr/bin/env bash
# Graphviz's dot lays out the desktop app's graph view. Installed with apt-get where it can be (root on
# Debian/Ubuntu, as on CI); elsewhere the command to run is printed and the app says the same when it is missing.
set -euo pipefail
if command -v dot >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
else
  echo "note: the graph view of edgekit gui needs Graphviz: sudo apt-get install graphviz (or brew install graphviz)" >&2
fi
