"""Waiting for OMS: ready for docker_init.sh, serving, every server Online.

doc 004 has the operator `sleep 300` before docker_init.sh and then look at the console's server
list; here each wait polls what it waits for and, when it gives up, says what it saw last and
shows the container's last log lines.

- ready for docker_init.sh: `supervisorctl status` shows oms_drc_cm and oms_drc_supervisor
  RUNNING, whatever its exit code (supervisor 3.x always exits 0, 4.x exits 3 while any program,
  such as oms_console before init, is not running; field notes);
- serving: GET /oms/health answers data.healthy true (obd waits on that after an upgrade);
- Online (the vendor's host-down guide): cm.host.host_status is ONLINE for the node's ip, and its
  supervisor heartbeat in its region's heart_beat table moves (written again between two readings,
  within ha.config's checkHostDownIntervalSec, the vendor's own threshold): no clock is compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..context import Run
from ..envfile import Node
from ..errors import MetaDBProblem, NotReady
from .containers import last_logs, require_running

T = TypeVar("T")
READY_TIMEOUT = 600.0  # the document sleeps 300 s; we poll, and give up after twice that
SERVING_LINE = "OMS service start successfully"  # obd waits for it in docker logs after a fresh deployment
METADB_CHECK_EVERY = 5.0  # seconds, while waiting for a console
INIT_NEEDS = ("oms_drc_cm", "oms_drc_supervisor")


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


def programs(run: Run, node: Node) -> tuple[dict[str, str], str]:
    """The node's supervisor programs and their states, and what supervisorctl printed."""
    require_running(run, node)
    states, out, _ = run.oms[node.name].programs()
    return states, out


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


def start_console(run: Run, node: Node) -> None:
    """`supervisorctl start oms_console` (as the operator does on a node whose init ran elsewhere, or whose
    container restarted with IS_UPGRADE=true), recorded; then until it is RUNNING.

    Where it already runs (or starts), supervisor changes nothing and says so ("oms_console: ERROR (already
    started)", exit 0 from supervisor 4 on): that is not recorded as a start."""
    rc, out, already = run.oms[node.name].start_program("oms_console")
    run.evidence(f"{node.name}: supervisorctl start oms_console", f"exit {rc}\n{out}")
    if not already:
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


HOST_DOWN_DEFAULT = 540  # ha.config checkHostDownIntervalSec's documented default (OD system parameters)


def host_down_seconds(run: Run) -> int:
    """How long the vendor lets a host go without heartbeats before it marks it down: ha.config's
    checkHostDownIntervalSec (HA introduction; 540 s by default, OD system parameters)."""
    try:
        value = run.metadb.ha_config(run.env.metadb.rm).get("checkHostDownIntervalSec")
    except MetaDBProblem:
        value = None
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 86400 else HOST_DOWN_DEFAULT


def server_states(run: Run) -> list[dict[str, Any]]:
    """Every node of the environment: host_status in cm, its supervisor heartbeat as written and its age by
    the MetaDB's clock (evidence: the heartbeat may be written in another time zone)."""
    status = run.metadb.host_status(run.env.metadb.cm)
    out = []
    for region in run.env.regions:
        beats = run.metadb.supervisor_heartbeats(region.cm_hb)
        for n in region.nodes:
            at, age = beats.get(n.ip, (None, None))
            out.append(
                {
                    "node": n.name,
                    "ip": n.ip,
                    "region": region.name,
                    "host_status": status.get(n.ip),
                    "heartbeat_at": at,
                    "heartbeat_age_s": age,
                }
            )
    return out


def servers_online(run: Run, limit: float | None = None) -> list[dict[str, Any]]:
    """doc 004 step 7: every server Online, by the documented reading (the host-down guide): cm.host's
    host_status ONLINE, and its supervisor heartbeat moving: written again between two readings. No clock is
    compared with another (the FAQ shows 8-hour offsets). The vendor marks a host down after
    checkHostDownIntervalSec without heartbeats: the run waits that long, at most, for each to move and
    show ONLINE. Returns what was seen."""
    limit = host_down_seconds(run) if limit is None else limit
    first = {s["node"]: s["heartbeat_at"] for s in server_states(run)}
    moved: set[str] = set()
    last: list[list[dict[str, Any]]] = [[]]

    def check() -> list[dict[str, Any]] | None:
        last[0] = server_states(run)
        for st in last[0]:
            if st["heartbeat_at"] is not None and st["heartbeat_at"] != first.get(st["node"]):
                moved.add(st["node"])
            st["heartbeat_moving"] = st["node"] in moved
        return last[0] if all(st["host_status"] == "ONLINE" and st["heartbeat_moving"] for st in last[0]) else None

    def describe() -> str:
        bad = [
            f"{st['node']} ({st['ip']}): host_status {st['host_status']}, supervisor heartbeat "
            + (
                "missing"
                if st["heartbeat_at"] is None
                else f"{'moving' if st['heartbeat_moving'] else 'not written again'} (last {st['heartbeat_at']})"
            )
            for st in last[0]
            if not (st["host_status"] == "ONLINE" and st.get("heartbeat_moving"))
        ]
        return f"not every server is Online after {limit:.0f} s (ha.config checkHostDownIntervalSec): " + "; ".join(bad)

    seen = wait_until(check, limit, describe, interval=1.0, live=lambda m: run.live(f"servers Online: {m}"))
    skewed = [
        f"{st['node']} {st['heartbeat_age_s']} s"
        for st in seen
        if st["heartbeat_age_s"] is not None and abs(st["heartbeat_age_s"]) > max(60, limit)
    ]
    if skewed:
        run.warn(
            "the supervisor heartbeats move, but their times are far from the MetaDB's clock ("
            + ", ".join(skewed)
            + "): a time zone difference between the containers and the MetaDB? (the FAQ's 8-hour offsets; the "
            "documents require one time zone)"
        )
    return seen
