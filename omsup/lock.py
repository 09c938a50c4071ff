"""One operator at a time: a lock per environment, where every operator's run can see it.

The lock is a file on the backup host (every run of every runbook on a deployment writes its
backups there and reads them back): ``<backup.dir>/<env name>/.omsup.lock``, created atomically
(noclobber) and holding who holds it, from where, since when and for which runbook. A second
run is refused with that. A lock left by a killed run stays until released deliberately with
``omsup unlock --env FILE`` (after checking that no run is going on).
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
from .record import utc_now


def lock_path(env: Environment) -> str:
    return posixpath.join(env.backup.dir, env.name, ".omsup.lock")


def holder(host: Host, env: Environment) -> dict[str, Any] | None:
    text = host.read_text_if_present(lock_path(env))
    if text is None:
        return None
    try:
        return dict(json.loads(text))
    except (ValueError, TypeError):
        return {"raw": text[:200]}


def acquire(host: Host, env: Environment, runbook: str, operator: str) -> dict[str, Any]:
    me = {
        "runbook": runbook,
        "operator": operator,
        "user": getpass.getuser(),
        "machine": socket.gethostname(),
        "pid": os.getpid(),
        "since": utc_now(),
    }
    path = lock_path(env)
    if not host.is_dir(env.backup.dir):
        raise PreconditionRefused(
            f"backup folder {env.backup.dir} on {host.label} does not exist",
            f"create it (mkdir -p {env.backup.dir}; chmod 700 {env.backup.dir}) on {host.label}",
        )
    host.make_private_dir(posixpath.dirname(path))
    if not host.create_exclusive(path, json.dumps(me)):
        other = holder(host, env) or {}
        raise PreconditionRefused(
            f"another run holds the lock of environment {env.name}: {other.get('runbook')} by {other.get('operator')} "
            f"({other.get('user')}@{other.get('machine')}, pid {other.get('pid')}) since {other.get('since')} "
            f"[{path} on {host.label}]",
            "wait for it to finish; if no run is going on (a killed run), release it deliberately: "
            f"omsup unlock --env {env.source}",
        )
    return me


def release(host: Host, env: Environment, mine: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Remove the lock; with ``mine``, only if it is still ours."""
    current = holder(host, env)
    if current is None:
        return None
    if mine is not None and (current.get("pid"), current.get("since")) != (mine["pid"], mine["since"]):
        return current
    host.remove(lock_path(env))
    return current
