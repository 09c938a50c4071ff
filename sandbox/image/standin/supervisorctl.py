"""`supervisorctl` of the stand-in: status, start, stop, restart, version, as supervisor 4 answers them.

supervisor 4.x: `status` exits 3 while any program is not RUNNING (Supervisor/supervisor#24,
#1223; supervisor 3.x always exited 0); `start` waits until the program is RUNNING and answers
"ERROR (abnormal termination)", exit 7, when it died before (supervisor's supervisorctl.py and
rpcinterface.py); before supervisord answers it prints the socket error and
exits 4 (EX_NOPERM-like), as `unix:///var/run/supervisor/supervisor.sock no such file`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import common

SUPERVISOR_VERSION = "4.2.5"


def uptime(started: float) -> str:
    # the state file keeps supervisord's monotonic start; show what supervisorctl would
    secs = max(0, int(time.monotonic() - started)) if started else 0
    return f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def status(names: list[str]) -> int:
    state = common.supervisor_state()
    if not state:
        print("unix:///var/run/supervisor/supervisor.sock no such file", file=sys.stderr)
        return 4
    rc = 0
    for name in sorted(state):
        if names and name not in names:
            continue
        s = state[name]
        if s["state"] in ("RUNNING", "STARTING") and s.get("pid"):
            detail = f"pid {s['pid']}, uptime {uptime(s.get('started') or 0)}" if s["state"] == "RUNNING" else ""
        else:
            detail = s.get("description") or ""
        print(f"{name:<33}{s['state']:<10}{detail}".rstrip())
        if s["state"] != "RUNNING" and not common.variant("supervisor-3"):  # supervisor 3.x always exits 0
            rc = 3
    return rc


def exit_status(out: str) -> int:
    """supervisor 4's supervisorctl: a program that died starting is NOT_RUNNING (7), an unknown name
    GENERIC (1); `start` of a running program and `stop` of a stopped one change nothing and exit 0."""
    rc = 0
    for line in out.splitlines():
        if "(abnormal termination)" in line or "(spawn error)" in line:
            rc = 7
        elif "ERROR" in line and "(already started)" not in line and "(not running)" not in line:
            rc = rc or 1
    return rc


def started(out: str, names: list[str], deadline: float) -> str:
    """supervisord's answer to a start, once the programs left STARTING (as supervisor's: back once
    started, after startsecs, or failed): a "started" program that is not RUNNING then died starting."""
    while time.monotonic() < deadline and any(common.program_state(n) == "STARTING" for n in names):
        time.sleep(0.05)
    state = common.supervisor_state()
    lines = []
    for line in out.splitlines():
        name = line.split(":", 1)[0]
        # STARTING: still not RUNNING at the deadline (the supervisor-stuck fault): left as answered
        if line.endswith(": started") and state.get(name, {}).get("state") not in ("RUNNING", "STARTING"):
            line = f"{name}: ERROR (abnormal termination)"
        lines.append(line)
    return "\n".join(lines)


def control(action: str, names: list[str]) -> int:
    if not common.supervisor_state():
        print("unix:///var/run/supervisor/supervisor.sock no such file", file=sys.stderr)
        return 4
    if names == ["all"]:
        names = sorted(common.supervisor_state())
    req = os.path.join(common.CTL_DIR, f"{uuid.uuid4().hex}")
    with open(req + ".tmp", "w") as f:
        json.dump({"action": action, "names": names}, f)
    os.replace(req + ".tmp", req + ".req")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(req + ".done"):
            with open(req + ".done") as f:
                out = f.read()
            os.unlink(req + ".done")
            if action in ("start", "restart"):
                out = started(out, names, deadline)
            print(out)
            return exit_status(out)
        time.sleep(0.05)
    print("error: supervisord did not answer", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] == "status":
        return status(argv[1:])
    if argv[0] == "version":
        print(SUPERVISOR_VERSION)
        return 0
    if argv[0] in ("start", "stop", "restart") and len(argv) > 1:
        return control(argv[0], argv[1:])
    print(f"*** Unknown syntax: {' '.join(argv)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
