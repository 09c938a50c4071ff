"""SIGTERM and SIGHUP end a run as Ctrl-C does: exit 2, the step recorded as interrupted, the run
folder (summary, junit, report, redaction) written and the lock released.

By default SIGTERM (a CI job cancelled, `kill`, systemd) and SIGHUP (a dropped terminal) end the
process at once: the lock stays, the run folder has no summary, and the MySQL option file of a dump
in progress stays on the backup host. Here each becomes the KeyboardInterrupt pytest already
handles. The run's own child processes (mysqldump, mysql, ssh, docker) are asked to end too, as a
terminal's Ctrl-C reaches its whole process group: otherwise a dump started by a worker thread would
hold the run until it finished. Once the run is ending (writing its folder, releasing the lock), a
further signal is noted and ignored: that work is what the signal's sender wants done; SIGKILL stays
the way to end it at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A run interrupted by a signal (its name in the message, for the ledger and the report)."""

    def __init__(self, name: str) -> None:
        self.signame = name
        super().__init__(f"interrupted by {name}")


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def become_subreaper() -> bool:
    """Orphans of this process's children (a script's own child when the script is ended first) are re-parented
    to this process instead of init, so that ``stop_children`` still finds them. Linux only; False elsewhere."""
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (the deepest last), from /proc; [] where /proc cannot be read."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes().decode("ascii", "replace")
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":  # a zombie has ended already
                parents[int(name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    out: list[int] = []
    frontier = [pid]
    while frontier:
        children = [c for c, p in parents.items() if p in frontier and c not in out]
        out += children
        frontier = children
    return out


def stop_children(rounds: int = 10) -> list[int]:
    """SIGTERM to every process this one started (and theirs), the deepest first, again until none is left (a
    script may start one more while it is being ended); returns their pids."""
    seen: list[int] = []
    for _ in range(rounds):
        pids = [p for p in descendants(os.getpid()) if p not in seen]
        if not pids:
            break
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        seen += pids
        time.sleep(0.05)
    return seen


class SignalGuard:
    """Installed by the runbook plugin for the session (main thread only); ``closing()`` once the run ends."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.ignored: list[str] = []
        self._previous: dict[int, Any] = {}
        self._closing = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        become_subreaper()
        for s in HANDLED:
            if signal.getsignal(s) is signal.SIG_IGN:  # started in the background or under nohup: said so, kept
                continue
            self._previous[s] = signal.signal(s, self._handle)

    def closing(self) -> None:
        """From here the run writes its folder and releases the lock: signals are noted, not raised. After a
        signal, what a worker thread started meanwhile is ended too."""
        self._closing = True
        if self.received:
            stop_children()

    def uninstall(self) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._closing:
            self.ignored.append(name)
            return
        self.received.append(name)
        stop_children()
        raise Interrupted(name)
