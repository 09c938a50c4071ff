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
from pathlib import Path
from typing import Any

from .adapters.hosts import Host
from .envfile import Environment
from .errors import PreconditionRefused
from .record import utc_now
from .redact import excerpt


def lock_path(env: Environment) -> str:
    return posixpath.join(env.backup.dir, env.name, ".omsup.lock")


HOLDER_KEYS = ("runbook", "operator", "user", "machine", "pid", "since")


def holder(host: Host, env: Environment) -> dict[str, Any] | None:
    text = host.read_text_if_present(lock_path(env))
    return None if text is None else parse_holder(text)


def parse_holder(text: str) -> dict[str, Any]:
    """A lock file's content: who holds it. Never an error: a lock file this project did not write
    (garbage, `5`, `null`) is shown as what it holds, under "raw"."""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or not all(k in doc for k in HOLDER_KEYS):
        return {"raw": excerpt(text)}
    out = {
        k: doc[k] if isinstance(doc[k], str | int) and not isinstance(doc[k], bool) else excerpt(doc[k], 80)
        for k in HOLDER_KEYS
    }
    return out


def describe(h: dict[str, Any]) -> str:
    if "raw" in h:
        return f"a lock file omsup did not write, holding {h['raw']!r}"
    return f"{h['runbook']} by {h['operator']} ({h['user']}@{h['machine']}, pid {h['pid']}) since {h['since']}"


def may_live(h: dict[str, Any]) -> tuple[bool, str]:
    """Whether the holder of a lock may still be running, and why this is believed.

    Only a holder on this very machine can be checked: its pid gone (or now another program) means
    it is over. A holder elsewhere, or a lock file omsup did not write, may live.
    """
    if "raw" in h:
        return True, "its holder cannot be told"
    if h["machine"] != socket.gethostname():
        return (
            True,
            f"it was taken on {h['machine']}, not on this machine ({socket.gethostname()}): it cannot be checked",
        )
    pid = h["pid"]
    try:
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except (OSError, ValueError):
        return False, f"pid {pid} no longer runs on this machine"
    if "pytest" in cmdline or "omsup" in cmdline:
        return True, f"pid {pid} still runs on this machine: {excerpt(cmdline, 120)}"
    return False, f"pid {pid} is now another program ({excerpt(cmdline, 60)})"


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
        other = holder(host, env)
        raise PreconditionRefused(
            f"another run holds the lock of environment {env.name}: "
            f"{describe(other) if other else 'a lock file that vanished while it was read'} [{path} on {host.label}]",
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
