"""Start and stop the sandbox's own daemons (dockerd, mariadbd, sshd) by pid file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class SandboxError(RuntimeError):
    """The sandbox could not do what was asked; the message says what to do."""


def run(
    cmd: list[str], *, input: bytes | None = None, check: bool = True, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, input=input, capture_output=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise SandboxError(
            f"command failed (exit {p.returncode}): {' '.join(cmd[:6])}...\n{p.stderr.decode(errors='replace')[-2000:]}"
        )
    return p


def pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # a zombie or a recycled pid is not our daemon
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
    except OSError:
        return None
    return pid


def start_daemon(cmd: list[str], log: Path, pidfile: Path | None = None, env: dict | None = None) -> int:
    """Start a daemon in its own session; return its pid (and write it to ``pidfile``)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
    if pidfile is not None:
        pidfile.write_text(str(p.pid))
    return p.pid


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    tail = ""
    if log and log.exists():
        tail = "\n  last log lines:\n    " + "\n    ".join(log.read_text(errors="replace").splitlines()[-15:])
    raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


def stop_pid(pidfile: Path, timeout: float = 20) -> None:
    pid = pid_alive(pidfile)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pidfile):
        time.sleep(0.1)
    if pid_alive(pidfile):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
