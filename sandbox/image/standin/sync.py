"""A Store or Incr-Sync component of the stand-in: a process of its own that oms_drc_supervisor starts.

The hot-upgrade page (OD zh-CN/1300.upgrade-guide/309.hot-upgrade.md) upgrades "without affecting the
running data migration and synchronization tasks" while `supervisorctl stop ... oms_drc_supervisor ...`
stops the management programs: the components are not children the supervisor program takes down with
it. Here each is detached (its own session, reparented to the container's init); its PID file is in
/home/ds/run (the run mount) and its checkpoint, advanced every second, in /home/ds/store (the store
mount), where a cold upgrade's new container finds it again.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import common
import facts

COMPONENTS = {"store": "store.checkpoint", "incr_sync": "incr_sync.checkpoint"}


def pid_path(name: str) -> str:
    return os.path.join(facts.RUN, f"{name}.pid")


def alive(name: str) -> bool:
    """The component's process runs (its PID file names a live sync.py of that name)."""
    try:
        with open(pid_path(name)) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (OSError, ValueError):
        return False
    return any(a.endswith(b"sync.py") for a in argv) and name.encode() in argv


def ensure_running() -> None:
    """Start each component that does not run, detached (double fork, its own session)."""
    for name in COMPONENTS:
        if alive(name):
            continue
        if os.fork() == 0:  # the first child: a new session, then the component as its child, then gone
            os.setsid()
            if os.fork() == 0:
                log = os.open(os.path.join(facts.LOGS, f"standin_{name}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), name])
            os._exit(0)
        os.wait()


def main(name: str) -> None:
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))
    os.makedirs(facts.STORE, exist_ok=True)
    os.makedirs(facts.RUN, exist_ok=True)
    with open(pid_path(name) + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(pid_path(name) + ".tmp", pid_path(name))
    path = os.path.join(facts.STORE, COMPONENTS[name])
    try:
        with open(path) as f:
            checkpoint = int(f.read().strip() or 0)
    except (OSError, ValueError):
        checkpoint = 0
        if common.IS_UPGRADE:
            common.log(f"WARN {name} checkpoint missing: the store mount is not the one used before the upgrade")
    common.log(f"INFO {name} component started with pid {os.getpid()} at checkpoint {checkpoint}", to_stdout=False)
    while True:
        checkpoint += 1
        with open(path + ".tmp", "w") as f:
            f.write(str(checkpoint))
        os.replace(path + ".tmp", path)
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1])
