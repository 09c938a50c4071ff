#!/usr/bin/env bash
# The test suite: set up, lint, then unit, plugin and integration tests (against the sandbox,
# which the integration tests bring up and take down). Exit code 5 (no tests ran) fails too.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
cleanup() { .venv/bin/python -m sandbox down >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
.venv/bin/ruff check . || exit 1
.venv/bin/ruff format --check . || exit 1
.venv/bin/mypy || exit 1  # strict, over omsup, fixtures and runbooks (pyproject.toml)
.venv/bin/python -m pytest tests --durations=20 "$@"  # the 20 slowest, to see where CI's time goes
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "no tests ran: that is a failure" >&2
  exit 1
fi
exit "$rc"
