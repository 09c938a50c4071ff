"""Waiting for OMS: ready for docker_init.sh, serving, every server Online.

doc 004 has the operator `sleep 300` before docker_init.sh and then look at the console's server
list; here each wait polls what it waits for and gives up with what it saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..context import Run
from ..envfile import Node
from ..errors import NotReady
from .containers import require_running

T = TypeVar("T")
READY_TIMEOUT = 600.0  # the document sleeps 300 s; we poll, and give up after twice that
SERVING_LINE = "OMS service start successfully"  # obd waits for this last log line
METADB_CHECK_EVERY = 5.0  # seconds, while waiting for a console


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


def init_ready(run: Run, node: Node) -> bool:
    """Ready for docker_init.sh: the container runs and its supervisord answers.

    Not public: what the documented `sleep 300` waits for. This project's choice: the
    container's processes are up, i.e. `supervisorctl status` answers (OMS runs them under
    supervisord, obd).
    """
    require_running(run, node)
    rc, _ = run.engines[node.name].exec(run.env.container, "supervisorctl", "status")
    return rc == 0


def serving(run: Run, node: Node) -> bool:
    """The node serves: /oms/health says healthy and the log shows the start line (obd)."""
    require_running(run, node)
    try:
        healthy = bool(run.consoles[node.name].health().get("healthy"))
    except NotReady:
        return False
    return healthy and SERVING_LINE in run.engines[node.name].logs(run.env.container, 200)


def wait_serving(run: Run, node: Node, timeout: float = READY_TIMEOUT) -> None:
    run.live(f"{node.name}: waiting for the console to serve")
    last_ping = time.monotonic()

    def check() -> bool:
        nonlocal last_ping
        if serving(run, node):
            return True
        # OMS does not start without its MetaDB: a MetaDB that does not answer is said at once (as a
        # MetaDB problem) instead of after the whole readiness timeout
        if time.monotonic() - last_ping >= METADB_CHECK_EVERY:
            last_ping = time.monotonic()
            run.metadb.blame_if_down(
                f"node {node.name}: the console does not serve yet", "running the runbook again resumes here"
            )
        return False

    wait_until(
        check,
        timeout,
        interval=0.2,
        live=lambda m: run.live(f"{node.name}: console: {m}"),
        describe=lambda: (
            f"node {node.name}: the console does not serve (health or '{SERVING_LINE}' missing); "
            f"last log lines:\n{run.engines[node.name].logs(run.env.container, 15)}"
        ),
    )


def servers_online(run: Run) -> list[dict[str, Any]]:
    """doc 004 step 7: every machine Online in the server list; returns the list."""
    last: list[list[dict[str, Any]]] = []

    def check() -> list[dict[str, Any]] | None:
        lst = run.consoles[run.env.nodes[0].name].servers()
        by_ip = {s.get("ip"): s for s in lst}
        if all(by_ip.get(n.ip, {}).get("status") == "Online" for n in run.env.nodes):
            return lst
        last[:] = [lst]
        return None

    return wait_until(
        check, 60, lambda: "not every server is Online: " + json.dumps(last[0] if last else None), interval=1.0
    )
