#!/usr/bin/env bash
# Lint, format check and type check with the venv's tools; pyproject.toml says what each checks.
# Runs all three and exits non-zero if any of them found something.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
.venv/bin/ruff check . || status=1
.venv/bin/ruff format --check . || status=1
.venv/bin/mypy || status=1
exit "$status"
