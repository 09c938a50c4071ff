#!/usr/bin/env bash
# What a CI job runs against a staging deployment, the same in every pipeline:
#   docs/ci/omsup-ci.sh probe|upgrade|rollback
# OMSUP_ENV      the staging environment file (its secrets are references: {env: ...} filled from
#                the CI's secret store, never written in the file or on a command line)
# OMSUP_REPORTS  where run folders go (default ./reports): keep it as the job's artifact
# OMSUP_UPGRADE / OMSUP_ROLLBACK  the runbooks (default upgrade_429 / rollback_429)
# OMSUP_PYTHON   the Python that has omsup (default the checkout's .venv, made by scripts/setup.sh)
# A job that did not end with 0 prints `omsup status` (the lock, the unfinished run, what to do next).
# Exit code: the runbook's (0 done, 1 failed after changes began, 2 interrupted, 4 usage or
# environment-file error, 10 refused before any change); every non-zero fails the job.
set -uo pipefail
action=${1:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
py=${OMSUP_PYTHON:-$root/.venv/bin/python}
reports=${OMSUP_REPORTS:-$PWD/reports}
case $action in
  probe) book=probe ;;
  upgrade) book=${OMSUP_UPGRADE:-upgrade_429} ;;
  rollback) book=${OMSUP_ROLLBACK:-rollback_429} ;;
  *) echo "usage: omsup-ci.sh probe|upgrade|rollback (got '${action}')" >&2; exit 4 ;;
esac
if [ -z "${OMSUP_ENV:-}" ]; then
  echo "OMSUP_ENV is not set: point it at the staging environment file" >&2
  exit 4
fi
"$py" -m omsup check-env "$OMSUP_ENV" || exit 4
mkdir -p "$reports"
"$py" -m pytest "$root/runbooks/$book" --env "$OMSUP_ENV" --report-root "$reports" -p no:cacheprovider </dev/null
rc=$?
folder=$(ls -td "$reports/$book-"* 2>/dev/null | head -n 1)
if [ "$rc" -ne 0 ]; then  # where the environment stands and what to do next, in the job's log
  "$py" -m omsup status --env "$OMSUP_ENV" || true
fi
echo "omsup-ci: $action ($book) exited $rc; run folder: ${folder:-none}"
exit "$rc"
