"""One operator at a time: a lock per environment, where every operator's run can see it.

The lock is a file on the backup host (every run of every runbook on a deployment writes its
backups there and reads them back): ``<backup.dir>/<env name>/.omsup.lock``, created atomically
(noclobber, and only as a regular file: a symlink or a FIFO there is refused) and holding who holds
it, from where, since when and for which runbook, with an id. A second run is refused with that.

Whether a holder still runs is decided by what identifies a process, never by a word in its
command line: the machine, its boot (``/proc/sys/kernel/random/boot_id``), the PID namespace, the
pid and the process's start time (``/proc/PID/stat``). A holder is proven gone when it was taken
on this machine, in this PID namespace, and the machine rebooted since, or the pid no longer
exists, or the pid now belongs to a process started at another time. Anything else (another
machine, another PID namespace of the same host name as CI containers are, a lock file omsup did
not write) may still run: ``omsup unlock`` refuses it and says why, and ``omsup unlock --force ID``
removes that very lock, as Terraform's force-unlock does, after the operator checked.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import posixpath
import re
import secrets
import socket
from pathlib import Path
from typing import Any

from .adapters.hosts import Host
from .envfile import Environment
from .errors import HostProblem, PreconditionRefused
from .record import utc_now
from .redact import excerpt, printable
from .runbook import omsup_command

MAX_LOCK_BYTES = 64 * 1024  # a lock file is a few hundred bytes
HOLDER_KEYS = ("runbook", "operator", "user", "machine", "pid", "since")
IDENTITY_KEYS = ("id", "boot_id", "pid_ns", "start_time")  # from omsup 0.3: what proves a holder gone
LOCK_ID = re.compile(r"[0-9a-f]{12}")


def lock_path(env: Environment) -> str:
    return posixpath.join(env.backup_dir, ".omsup.lock")


# -- this process, as a lock identifies it ---------------------------------------------------------
def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_bytes().decode("ascii", "replace")
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def me(runbook: str, operator: str) -> dict[str, Any]:
    pid = os.getpid()
    return {
        "id": secrets.token_hex(6),
        "runbook": runbook,
        "operator": operator,
        "user": getpass.getuser(),
        "machine": socket.gethostname(),
        "boot_id": boot_id(),
        "pid_ns": pid_namespace(),
        "pid": pid,
        "start_time": start_time(pid),
        "since": utc_now(),
    }


# -- reading a lock file ---------------------------------------------------------------------------
def holder(host: Host, env: Environment) -> dict[str, Any] | None:
    text = host.read_small_file(lock_path(env), MAX_LOCK_BYTES)
    return None if text is None else parse_holder(text)


def parse_holder(text: str) -> dict[str, Any]:
    """A lock file's content: who holds it. Never an error: a lock file this project did not write
    (garbage, `5`, `null`) is shown as what it holds, under "raw". Every lock has an id: its own, or
    for a file without one a digest of its content (so ``unlock --force ID`` still names that file)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    try:
        doc = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or not all(k in doc for k in HOLDER_KEYS):
        return {"raw": printable(excerpt(text)), "id": digest}
    out: dict[str, Any] = {
        k: printable(doc[k]) if isinstance(doc[k], str) else doc[k] if _plain_int(doc[k]) else excerpt(doc[k], 80)
        for k in HOLDER_KEYS
    }
    for k in IDENTITY_KEYS:
        v = doc.get(k)
        out[k] = printable(v) if isinstance(v, str) else v if _plain_int(v) else None
    if not (isinstance(out["id"], str) and LOCK_ID.fullmatch(out["id"])):
        out["id"] = digest
    return out


def _plain_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def describe(h: dict[str, Any]) -> str:
    if "raw" in h:
        return f"a lock file omsup did not write, holding {h['raw']!r} (lock id {h['id']})"
    return (
        f"{h['runbook']} by {h['operator']} ({h['user']}@{h['machine']}, pid {h['pid']}) since {h['since']} "
        f"(lock id {h['id']})"
    )


def may_live(h: dict[str, Any]) -> tuple[bool, str]:
    """Whether the holder of a lock may still be running, and why this is believed. Only a holder proven
    gone (see the module's text) is said not to live."""
    if "raw" in h:
        return True, "its holder cannot be told"
    here = socket.gethostname()
    if h["machine"] != here:
        return True, f"it was taken on {h['machine']}, not on this machine ({here}): it cannot be checked"
    if h.get("boot_id") and boot_id() and h["boot_id"] != boot_id():
        return False, f"this machine rebooted since it was taken (boot id {h['boot_id']}, now {boot_id()})"
    if not h.get("pid_ns") or h.get("start_time") is None:
        return (
            True,
            "it was written without the identity that proves a process gone (an older omsup): cannot be checked",
        )
    if h["pid_ns"] != pid_namespace():
        return (
            True,
            f"it was taken in another PID namespace ({h['pid_ns']}; a container of the same host name?): "
            "its pid cannot be checked from here",
        )
    if not _plain_int(h["pid"]):
        return True, f"its pid {h['pid']!r} is not a number: it cannot be checked"
    now = start_time(int(h["pid"]))
    if now is None:
        return False, f"pid {h['pid']} no longer runs on this machine"
    if now != h["start_time"]:
        return False, f"pid {h['pid']} is now another process (started at tick {now}, the holder at {h['start_time']})"
    return True, f"pid {h['pid']} still runs on this machine (the same process: started at tick {now})"


# -- taking and releasing ------------------------------------------------------------------------
def acquire(host: Host, env: Environment, runbook: str, operator: str) -> dict[str, Any]:
    mine = me(runbook, operator)
    path = lock_path(env)
    if not host.is_dir(env.backup.dir):
        raise PreconditionRefused(
            f"backup folder {env.backup.dir} on {host.label} does not exist",
            f"create it (mkdir -p {env.backup.dir}; chmod 700 {env.backup.dir}) on {host.label}",
        )
    host.make_private_dir(posixpath.dirname(path))
    try:
        created = host.create_exclusive(path, json.dumps(mine))
    except HostProblem as e:
        raise PreconditionRefused(f"the lock of environment {env.name}: {e.message}", e.hint) from None
    if not created:
        other = holder(host, env)
        raise PreconditionRefused(
            f"another run holds the lock of environment {env.name}: "
            f"{describe(other) if other else 'a lock file that vanished while it was read'} [{path} on {host.label}]",
            "wait for it to finish; if no run is going on (a killed run), release it deliberately: "
            + omsup_command("unlock", "--env", env.source),
        )
    return mine


def release(host: Host, env: Environment, mine: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Remove the lock; with ``mine``, only if it is still ours (its id)."""
    current = holder(host, env)
    if current is None:
        return None
    if mine is not None and current.get("id") != mine["id"]:
        return current
    host.remove(lock_path(env))
    return current
