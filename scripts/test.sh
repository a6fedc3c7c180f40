#!/usr/bin/env bash
# Set up everything the test suite needs (venv, requirements, Debian's chromium for the browser
# tests and PostgreSQL for the lake tests), run the lint, format and type checks (scripts/lint.sh) and the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k stub
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
# Debian's PostgreSQL for the lake tests (tests/postgres.py starts its own server under /tmp)
scripts/ensure_postgres.sh
# lint, format and type checks first (seconds), then the tests; either failing fails the command
lint_status=0
scripts/lint.sh || lint_status=$?
test_status=0
.venv/bin/python -m pytest "$@" || test_status=$?
if [ "$lint_status" != 0 ]; then
  echo "scripts/lint.sh found problems (see above)" >&2
fi
[ "$test_status" != 0 ] && exit "$test_status"
exit "$lint_status"
