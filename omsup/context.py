"""The run context a step receives: the environment, the adapters, the ledger, the report hooks."""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import allure
import pytest

from .adapters.console import Console
from .adapters.engine import Engine
from .adapters.hosts import Host
from .adapters.metadb import MetaDB
from .audit import AUDIT
from .envfile import Environment, Node
from .errors import OmsupError
from .ledger import Ledger
from .redact import redact, redact_obj

if TYPE_CHECKING:
    from .runbook import Runbook, RunbookStep

T = TypeVar("T")


class MemoryLedger(Ledger):
    """A ledger that is never written: plan mode changes nothing, not even the state folder."""

    def save(self) -> None:
        pass


class Run:
    def __init__(self, env: Environment, runbook: Runbook, ledger: Ledger, resumed: bool, plan: bool,
                 until: int | None, report_dir: Path | None) -> None:
        self.env = env
        self.runbook = runbook
        self.ledger = ledger
        self.resumed = resumed
        self.plan = plan
        self.until = until
        self.report_dir = report_dir
        self.plans: dict[str, list[str]] = {}
        self.outcomes: dict[int, dict[str, Any]] = {}
        self.current: RunbookStep | None = None
        self.live: Callable[[str], None] = lambda msg: None  # the terminal's live view (plugin sets it)
        self.lock: dict[str, Any] | None = None  # this run's lock on the environment (omsup.lock)
        self.background: dict[str, Future[Any]] = {}  # work started early (e.g. loading the image)

    # -- adapters (lazy: one per node, created on first use) --------------------------------
    @cached_property
    def hosts(self) -> dict[str, Host]:
        return {n.name: Host(n.host, n.name, node=n.name) for n in self.env.nodes}

    @cached_property
    def engines(self) -> dict[str, Engine]:
        return {n.name: Engine(n.docker, n.name) for n in self.env.nodes}

    @cached_property
    def consoles(self) -> dict[str, Console]:
        return {n.name: Console(self.env.console, n.ip, n.name) for n in self.env.nodes}

    @cached_property
    def backup_host(self) -> Host:
        for n in self.env.nodes:
            if n.host == self.env.backup.host:
                return self.hosts[n.name]
        return Host(self.env.backup.host, f"backup host {self.env.backup.host}")

    @cached_property
    def metadb(self) -> MetaDB:
        return MetaDB(self.env.metadb)

    # -- concurrency across nodes -------------------------------------------------------------
    def each_node(self, fn: Callable[[Node], T], nodes: list[Node] | None = None, what: str = "") -> dict[str, T]:
        """Run ``fn`` on every node concurrently; report each node's part as a sub-step.

        Raises the failure of the first failed node (in node order) after every node finished,
        with the other nodes' failures in the message.
        """
        nodes = list(nodes if nodes is not None else self.env.nodes)
        results: dict[str, T] = {}
        errors: dict[str, BaseException] = {}
        timings: dict[str, float] = {}

        def work(n: Node) -> None:
            with AUDIT.node(n.name):
                t0 = time.monotonic()
                try:
                    results[n.name] = fn(n)
                except BaseException as e:  # noqa: BLE001 - reported below, per node
                    errors[n.name] = e
                finally:
                    timings[n.name] = time.monotonic() - t0

        with ThreadPoolExecutor(max_workers=max(1, min(16, len(nodes)))) as pool:
            list(pool.map(work, nodes))
        for n in nodes:  # per-node sub-steps, attached from the main thread
            status = "failed" if n.name in errors else "ok"
            with allure.step(f"node {n.name} ({n.ip}): {what or 'done'} — {status} in {timings.get(n.name, 0):.1f}s"):
                events = AUDIT.of_step(AUDIT.step, n.name)
                if events:
                    allure.attach("\n".join(e.line() for e in events), f"{n.name}: commands",
                                  allure.attachment_type.TEXT)
                if n.name in results and results[n.name] is not None:
                    self.evidence(f"{n.name}: result", results[n.name])
                if n.name in errors:
                    allure.attach(redact("".join(traceback.format_exception_only(errors[n.name]))),
                                  f"{n.name}: error", allure.attachment_type.TEXT)
        if errors:
            first = next(n.name for n in nodes if n.name in errors)
            err = errors[first]
            if len(errors) > 1:
                others = "; ".join(f"{k}: {(str(v).splitlines() or [type(v).__name__])[0]}"
                               for k, v in errors.items() if k != first)
                if isinstance(err, OmsupError):
                    err.message += f"\n  other nodes failed too: {others}"
                    err.args = (str(err.message) + (f"\n  next: {err.hint}" if err.hint else ""),)
            raise err
        return results

    @contextmanager
    def watch(self, label: str, probe: Callable[[], str], every: float = 2.0) -> Iterator[None]:
        """Show ``label: probe()`` on the terminal every ``every`` seconds while the block runs."""
        done = threading.Event()

        def loop() -> None:
            while not done.wait(every):
                try:
                    self.live(f"{label}: {probe()}")
                except Exception:  # noqa: BLE001 - a live view never breaks the step
                    pass

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        try:
            yield
        finally:
            done.set()
            t.join()

    # -- evidence and plans --------------------------------------------------------------------
    def evidence(self, name: str, obj: Any) -> None:
        """Attach ``obj`` (JSON-able or text) to the current step, redacted."""
        if isinstance(obj, str):
            allure.attach(redact(obj), name, allure.attachment_type.TEXT)
        else:
            allure.attach(json.dumps(redact_obj(obj), indent=2, sort_keys=True, default=str), name,
                          allure.attachment_type.JSON)

    def would(self, lines: list[str]) -> None:
        """In plan mode: what the current step would do."""
        assert self.current is not None
        self.plans[self.current.label] = [redact(x) for x in lines]

    # -- executing a step ----------------------------------------------------------------------
    def execute(self, rs: RunbookStep) -> None:
        __tracebackhide__ = True
        self.current = rs
        AUDIT.step = rs.step.key
        key = rs.step.key
        t0 = time.monotonic()
        outcome: dict[str, Any] = {"step": rs.label, "doc": rs.doc, "started": time.time()}
        self.outcomes[rs.number] = outcome
        try:
            if self.until is not None and rs.number > self.until:
                outcome["status"] = "not run"
                pytest.skip(f"stopped before step {rs.number} as asked (--until {self.until}); "
                            "run again without --until to resume")
            if self.plan and rs.number > 0:  # plan mode: only the preflight runs
                lines = rs.step.plan(self) if rs.step.plan else [f"check (reads only): {rs.step.title} -- {rs.doc}"]
                self.would(lines)
                allure.attach("\n".join(self.plans[rs.label]), "plan: what this step would do",
                              allure.attachment_type.TEXT)
                outcome["status"] = "planned"
                return
            if self.ledger.step_done(key):
                # a later step that began (even if it failed half way) changed what this step's check looks at
                later = [s for s in rs.step.superseded_by if self.ledger.step_started(s)]
                if later:
                    with allure.step(f"already done in this run (resumed); its effect was replaced by {later[0]}"):
                        pass
                else:
                    with allure.step("already done in this run (resumed): verifying, not redoing"):
                        if rs.step.verify is not None:
                            rs.step.verify(self)
                outcome["status"] = "verified"
                return
            self.ledger.mark(key, "running")
            if os.environ.get("OMSUP_PAUSE_AT_STEP") == key:
                _test_pause()
            rs.step.do(self)
            self.ledger.mark(key, "done", seconds=round(time.monotonic() - t0, 2))
            outcome["status"] = "passed"
            if rs.number == 0 and self.runbook.after_preflight is not None:
                self.runbook.after_preflight(self)
        except pytest.skip.Exception:
            raise
        except BaseException as e:
            outcome["status"] = "failed"
            outcome["error"] = redact(str(e).splitlines()[0] if str(e) else type(e).__name__)
            outcome["category"] = getattr(e, "category", "Check failed" if isinstance(e, AssertionError) else
                                          "Runbook error")
            if not self.plan:
                self.ledger.mark(key, "failed", error=outcome["error"], category=outcome["category"])
            raise
        finally:
            outcome["seconds"] = round(time.monotonic() - t0, 2)
            events = AUDIT.of_step(key)
            if events:
                allure.attach("\n".join(e.line() for e in events), "every command, statement and request",
                              allure.attachment_type.TEXT)
            AUDIT.step = None


def _test_pause() -> None:
    """Tests only: hold the run at the start of a step (OMSUP_PAUSE_AT_STEP), so that a test can
    interrupt it or inject a fault there. With OMSUP_PAUSE_UNTIL_FILE=F, F.held is written once the run
    is held, and the run goes on as soon as F exists."""
    deadline = time.monotonic() + float(os.environ.get("OMSUP_PAUSE_SECONDS", "60"))
    release = os.environ.get("OMSUP_PAUSE_UNTIL_FILE")
    if release:
        with open(release + ".held", "w") as f:
            f.write(str(os.getpid()))
    while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(0.05)
