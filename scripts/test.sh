#!/usr/bin/env bash
# Set up everything the test suite needs (venv, requirements, Debian's chromium for the browser
# tests) and run the whole suite. Extra arguments go to pytest, e.g. scripts/test.sh -k stub
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && [ "${INSIGHTS_SKIP_BROWSER:-0}" != "1" ]; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
exec .venv/bin/python -m pytest "$@"
