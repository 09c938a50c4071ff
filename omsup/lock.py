"""One operator at a time: a lock per environment, where every operator's run can see it.

The lock is a file on the backup host (every run of every runbook on a deployment writes its
backups there and reads them back): ``<backup.dir>/<env name>/.omsup.lock``, created atomically
(noclobber) and holding who holds it, from where, since when and for which runbook. A second
run is refused with that. A lock left by a killed run stays until released deliberately with
``python -m omsup unlock --env FILE`` (after checking that no run is going on).
"""

from __future__ import annotations

import getpass
import json
import os
import posixpath
import socket
from typing import Any

from .adapters.hosts import Host
from .envfile import Environment
from .errors import PreconditionRefused
from .ledger import utc_now


def lock_path(env: Environment) -> str:
    return posixpath.join(env.backup.dir, env.name, ".omsup.lock")


def holder(host: Host, env: Environment) -> dict[str, Any] | None:
    r = host.run("cat -- %s", lock_path(env), quiet=True)
    if r.rc != 0:
        return None
    try:
        return dict(json.loads(r.stdout))
    except ValueError:
        return {"raw": r.stdout[:200]}


def acquire(host: Host, env: Environment, runbook: str, operator: str) -> dict[str, Any]:
    me = {"runbook": runbook, "operator": operator, "user": getpass.getuser(), "machine": socket.gethostname(),
          "pid": os.getpid(), "since": utc_now()}
    path = lock_path(env)
    if host.run("test -d %s", env.backup.dir).rc != 0:
        raise PreconditionRefused(f"backup folder {env.backup.dir} on {host.label} does not exist",
                                  f"create it (mkdir -p {env.backup.dir}; chmod 700 {env.backup.dir}) on {host.label}")
    host.check("umask 077; mkdir -p -- %s", posixpath.dirname(path), what="create the lock folder")
    r = host.run("set -o noclobber; umask 077; printf '%%s\\n' %s > %s", json.dumps(me), path, quiet=True)
    if r.rc != 0:
        other = holder(host, env) or {}
        raise PreconditionRefused(
            f"another run holds the lock of environment {env.name}: {other.get('runbook')} by {other.get('operator')} "
            f"({other.get('user')}@{other.get('machine')}, pid {other.get('pid')}) since {other.get('since')} "
            f"[{path} on {host.label}]",
            "wait for it to finish; if no run is going on (a killed run), release it deliberately: "
            f"python -m omsup unlock --env {env.source}")
    return me


def release(host: Host, env: Environment, mine: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Remove the lock; with ``mine``, only if it is still ours."""
    current = holder(host, env)
    if current is None:
        return None
    if mine is not None and (current.get("pid"), current.get("since")) != (mine["pid"], mine["since"]):
        return current
    host.run("rm -f -- %s", lock_path(env))
    return current
