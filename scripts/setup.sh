#!/usr/bin/env bash
# Installs everything the project needs on Debian 12 (idempotent; quick when already done).
# Debian packages (Docker engine, MariaDB, mysqldump, debootstrap, sshd, Chromium), a Python
# virtual environment in .venv with the project, and the pinned Allure Report 3 (npm).
#
#   bash scripts/setup.sh             # everything: the runbooks, the sandbox, the tests
#   bash scripts/setup.sh --control   # a control machine: only what running the runbooks needs (the MySQL
#                                     # clients, OpenSSH's client, the Docker CLI, Node.js and Allure for the
#                                     # report, the package without its development tools); no engine, no
#                                     # MariaDB server, no sshd, no browser
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

control=0
case "${1:-}" in
  "") ;;
  --control) control=1 ;;
  *) log "unknown option ${1}: use no option (everything) or --control (a control machine)"; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  log "run as root: apt-get installs packages (and the sandbox starts Docker engines, MariaDB and sshd)"
  exit 2
fi

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
if [ "$control" -eq 1 ]; then
  have mysqldump || missing+=(mariadb-client)
  have ssh       || missing+=(openssh-client)
  have openssl   || missing+=(openssl)
  have node      || missing+=(nodejs)
  have npm       || missing+=(npm)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  have docker || { log "apt-get install docker-cli"; apt-get install -y -qq docker-cli >/dev/null 2>&1 || apt-get install -y -qq docker.io >/dev/null; }
  [ -x .venv/bin/python ] || { log "python3 -m venv .venv"; python3 -m venv .venv; }
  log "pip install -c requirements.lock . (the package and its runtime dependencies, pinned; no development tools)"
  .venv/bin/pip install -q --disable-pip-version-check -c requirements.lock .
  log "npm ci (Allure Report 3, pinned)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  log "ready: .venv/bin/pytest runbooks/<name> --env FILE (report.html by Allure from node_modules)"
  exit 0
fi
have dockerd      || missing+=(docker.io)
have mariadbd     || missing+=(mariadb-server)
have mysqldump    || missing+=(mariadb-client)
have debootstrap  || missing+=(debootstrap)
have sshd         || missing+=(openssh-server)
have ssh          || missing+=(openssh-client)
have chromium     || missing+=(chromium)
have chromedriver || missing+=(chromium-driver)
have openssl      || missing+=(openssl)
have node         || missing+=(nodejs)
have npm          || missing+=(npm)
have gzip         || missing+=(gzip)
have curl         || missing+=(curl)
have sudo         || missing+=(sudo)  # the tests of `sudo: true` nodes
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The docker CLI runs `docker load -i` on the nodes; docker.io ships it where none is present.
have docker || { log "apt-get install docker-cli"; apt-get install -y -qq docker-cli >/dev/null 2>&1 || apt-get install -y -qq docker.io >/dev/null; }

if [ ! -x .venv/bin/python ]; then
  log "python3 -m venv .venv"
  python3 -m venv .venv
fi
stamp=.venv/.omsup-installed
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "pip install -r requirements.lock, then -e .[dev] (the pinned set; the project itself editable)"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e '.[dev]'
  echo "$want" > "$stamp"
fi

lock=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.omsup-installed 2>/dev/null)" != "$lock" ]; then
  log "npm ci (Allure Report 3, pinned)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$lock" > node_modules/.omsup-installed
fi
log "ready"
