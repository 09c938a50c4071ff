"""Waiting for OMS: ready for docker_init.sh, serving, every server Online.

doc 004 has the operator `sleep 300` before docker_init.sh and then look at the console's server
list; here each wait polls what it waits for and, when it gives up, says what it saw last and
shows the container's last log lines.

- ready for docker_init.sh: `supervisorctl status` shows oms_drc_cm and oms_drc_supervisor
  RUNNING, whatever its exit code (supervisor 3.x always exits 0, 4.x exits 3 while any program,
  such as oms_console before init, is not running; field notes);
- serving: GET /oms/health answers data.healthy true (obd waits on that after an upgrade);
- Online (the vendor's host-down guide): cm.host.host_status is ONLINE for the node's ip, and its
  supervisor heartbeat in its region's heart_beat table is current.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..context import Run
from ..envfile import Node
from ..errors import NotReady
from .containers import last_logs, require_running

T = TypeVar("T")
READY_TIMEOUT = 600.0  # the document sleeps 300 s; we poll, and give up after twice that
SERVING_LINE = "OMS service start successfully"  # obd waits for it in docker logs after a fresh deployment
METADB_CHECK_EVERY = 5.0  # seconds, while waiting for a console
HEARTBEAT_FRESH = 30  # seconds: a supervisor heartbeat older than this is not "the current time"
INIT_NEEDS = ("oms_drc_cm", "oms_drc_supervisor")
STATUS_LINE = re.compile(r"^(\S+)\s+(STOPPED|STARTING|RUNNING|BACKOFF|STOPPING|EXITED|FATAL|UNKNOWN)\b")


def wait_until(
    check: Callable[[], T | None],
    timeout: float,
    describe: Callable[[], str],
    interval: float = 0.5,
    live: Callable[[str], None] | None = None,
) -> T:
    """Poll ``check()`` until it returns a truthy value; on timeout raise NotReady with ``describe()``."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    shown = t0
    while True:
        value = check()
        if value:
            return value
        if live is not None and time.monotonic() - shown >= 5:
            shown = time.monotonic()
            live(f"still polling after {shown - t0:.0f}s (gives up after {timeout:.0f}s)")
        if time.monotonic() > deadline:
            raise NotReady(
                f"timed out after {timeout:.0f}s: {describe()}",
                "look at the container's log (below); run the runbook again to resume once it is fixed",
            )
        time.sleep(interval)


def parse_supervisor_status(text: str) -> dict[str, str]:
    """`supervisorctl status` as program -> state (lines it does not recognize are left out)."""
    out = {}
    for line in text.splitlines():
        m = STATUS_LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def programs(run: Run, node: Node) -> tuple[dict[str, str], str]:
    """The node's supervisor programs and their states, and what supervisorctl printed."""
    require_running(run, node)
    _, out = run.engines[node.name].exec(run.env.container, "supervisorctl", "status")
    return parse_supervisor_status(out), out


def wait_programs(run: Run, node: Node, names: tuple[str, ...], timeout: float = READY_TIMEOUT) -> dict[str, str]:
    """Until ``names`` are RUNNING in the node's `supervisorctl status` (its exit code does not matter)."""
    seen: list[str] = [""]

    def check() -> dict[str, str] | None:
        states, seen[0] = programs(run, node)
        fatal = [p for p in names if states.get(p) == "FATAL"]
        if fatal:  # supervisor gave up on it: waiting changes nothing
            raise NotReady(
                f"node {node.name}: supervisor gave up on {', '.join(fatal)} (FATAL); `supervisorctl status` said:\n"
                f"{seen[0].strip()}\n  last log lines:\n{last_logs(run, node)}",
                "see the program's log under /home/admin/logs/ in the container; run the runbook again once fixed",
            )
        return states if all(states.get(p) == "RUNNING" for p in names) else None

    return wait_until(
        check,
        timeout,
        interval=0.2,
        live=lambda m: run.live(f"{node.name}: supervisor: {m}"),
        describe=lambda: (
            f"node {node.name}: {', '.join(names)} not RUNNING; `supervisorctl status` "
            f"said:\n{seen[0].strip() or '(nothing)'}\n  last log lines:\n"
            f"{last_logs(run, node)}"
        ),
    )


CONSOLE_DOWN = ("STOPPED", "EXITED", "FATAL")  # supervisor will not start oms_console by itself from these
ALREADY_STARTED = "ERROR (already started)"  # supervisorctl's answer to a start of a program that runs


def start_console(run: Run, node: Node) -> None:
    """`supervisorctl start oms_console` (as the operator does on a node whose init ran elsewhere, or whose
    container restarted with IS_UPGRADE=true), recorded; then until it is RUNNING.

    Where it already runs (or starts), supervisor changes nothing and says so ("oms_console: ERROR (already
    started)", exit 0 from supervisor 4 on): that is not recorded as a start."""
    rc, out = run.engines[node.name].exec(run.env.container, "supervisorctl", "start", "oms_console")
    run.evidence(f"{node.name}: supervisorctl start oms_console", f"exit {rc}\n{out}")
    if ALREADY_STARTED not in out:
        with run.record.change() as f:
            if node.name not in f.consoles_started:
                f.consoles_started.append(node.name)
    wait_programs(run, node, ("oms_console",), timeout=120)


def serving(run: Run, node: Node) -> bool:
    """The node serves: its container runs and /oms/health says healthy (obd)."""
    require_running(run, node)
    try:
        return run.consoles[node.name].health().get("healthy") is True
    except NotReady:
        return False


def wait_serving(run: Run, node: Node, timeout: float = READY_TIMEOUT) -> None:
    run.live(f"{node.name}: waiting for the console to serve")
    last_ping = time.monotonic()
    last: list[str] = ["no answer yet"]
    started = [False]

    def check() -> bool:
        nonlocal last_ping
        require_running(run, node)
        try:
            h = run.consoles[node.name].health()
            if h.get("healthy") is True:
                return True
            last[0] = f"/oms/health answered healthy={h.get('healthy')!r}"
        except NotReady as e:
            last[0] = e.message
        # OMS does not start without its MetaDB: a MetaDB that does not answer is said at once (as a
        # MetaDB problem) instead of after the whole readiness timeout
        if time.monotonic() - last_ping >= METADB_CHECK_EVERY:
            last_ping = time.monotonic()
            run.metadb.blame_if_down(
                f"node {node.name}: the console does not serve yet", "running the runbook again resumes here"
            )
            # nor does a console that supervisor does not run: started once (as the operator would),
            # said at once if supervisor gives up on it again
            state = programs(run, node)[0].get("oms_console")
            if state in CONSOLE_DOWN and started[0]:
                raise NotReady(
                    f"node {node.name}: oms_console is {state} in supervisor again after `supervisorctl start "
                    f"oms_console`; last log lines:\n{last_logs(run, node)}",
                    "see /home/admin/logs/oms_console_std*.log in the container; run the runbook again once fixed",
                )
            if state in CONSOLE_DOWN:
                started[0] = True
                start_console(run, node)
        return False

    wait_until(
        check,
        timeout,
        interval=0.2,
        live=lambda m: run.live(f"{node.name}: console: {m}"),
        describe=lambda: (
            f"node {node.name}: the console does not serve ({last[0]}); last log lines:\n{last_logs(run, node)}"
        ),
    )


def server_states(run: Run) -> list[dict[str, Any]]:
    """Every node of the environment: host_status in cm, the age of its supervisor heartbeat, health."""
    status = run.metadb.host_status(run.env.metadb.cm)
    out = []
    for region in run.env.regions:
        beats = run.metadb.supervisor_heartbeats(region.cm_hb)
        for n in region.nodes:
            out.append(
                {
                    "node": n.name,
                    "ip": n.ip,
                    "region": region.name,
                    "host_status": status.get(n.ip),
                    "heartbeat_age_s": beats.get(n.ip),
                }
            )
    return out


def online(s: dict[str, Any]) -> bool:
    age = s.get("heartbeat_age_s")
    return s.get("host_status") == "ONLINE" and age is not None and age <= HEARTBEAT_FRESH


def servers_online(run: Run, timeout: float = 60) -> list[dict[str, Any]]:
    """doc 004 step 7: every server Online; returns what was seen."""
    last: list[list[dict[str, Any]]] = [[]]

    def check() -> list[dict[str, Any]] | None:
        last[0] = server_states(run)
        return last[0] if all(online(s) for s in last[0]) else None

    def describe() -> str:
        bad = [
            f"{s['node']} ({s['ip']}): host_status {s['host_status']}, supervisor heartbeat "
            + (f"{s['heartbeat_age_s']} s old" if s["heartbeat_age_s"] is not None else "missing")
            for s in last[0]
            if not online(s)
        ]
        return "not every server is Online: " + "; ".join(bad)

    return wait_until(check, timeout, describe, interval=1.0)
