#!/usr/bin/env bash
# The main job: set up, bring up the local sandbox (2 nodes at 4.2.8-CE) unless --env is given,
# and run the documented V4.2.9-CE upgrade against it. Extra arguments go to pytest
# (for example --plan, or --env prod.yaml to run against a real deployment).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
args=("$@")
if ! printf '%s\n' "${args[@]}" | grep -q -- '^--env'; then
  .venv/bin/python -m sandbox down >/dev/null   # a fresh sandbox at 4.2.8-CE every time
  env_file=$(.venv/bin/python -m sandbox up)
  args=(--env "$env_file" "${args[@]}")
fi
exec .venv/bin/python -m pytest runbooks/upgrade_429 "${args[@]}"
