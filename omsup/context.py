"""What a step receives: the environment, the adapters, the run record, and where evidence goes.

No pytest and no allure here: evidence and sub-steps go to a ``Reporter`` (the pytest plugin
gives one that writes the Allure report), the live view to a callback.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .adapters import oms
from .adapters.cm import CM
from .adapters.console import Console
from .adapters.engine import Engine
from .adapters.hosts import Host
from .adapters.hot import HotUpgrade
from .adapters.metadb import MetaDB
from .audit import AUDIT
from .envfile import Environment, Node
from .errors import OmsupError, PreconditionRefused
from .record import Facts, NodeFacts, Record
from .redact import redact, redact_obj
from .releases import Release, release_of

if TYPE_CHECKING:
    from .runbook import Runbook, RunbookStep

T = TypeVar("T")


class Reporter(Protocol):
    """Where a run's evidence goes (the pytest plugin writes it into the Allure report)."""

    def attach(self, name: str, body: str, is_json: bool) -> None: ...

    def part(self, title: str) -> AbstractContextManager[None]: ...


class NullReporter:
    def attach(self, name: str, body: str, is_json: bool) -> None:
        pass

    def part(self, title: str) -> AbstractContextManager[None]:
        return nullcontext()


class Recorded(Protocol):
    """What a run recorded of a node that the deployment's adapters use (its ports, its old container)."""

    def ports(self, node: str) -> tuple[int, int] | None: ...

    def container(self, node: str) -> str | None: ...


class NothingRecorded:
    def ports(self, node: str) -> tuple[int, int] | None:
        return None

    def container(self, node: str) -> str | None:
        return None


class Deployment:
    """The deployment an environment file describes, as adapters: its nodes' hosts, engines, OMS containers,
    consoles and CMs, the MetaDB and the backup host. Built from the environment alone (``omsup status``,
    ``omsup unlock`` and ``abandon`` use it so); a run gives it what it recorded (``Recorded``)."""

    def __init__(self, env: Environment, recorded: Recorded | None = None) -> None:
        self.env = env
        self.recorded: Recorded = recorded or NothingRecorded()
        self._ports: dict[str, tuple[int, int]] = {}
        self._ports_lock = threading.Lock()

    # -- adapters (lazy: one per node, created on first use) --------------------------------
    @cached_property
    def hosts(self) -> dict[str, Host]:
        return {n.name: Host(n.host, n.name, node=n.name, sudo=n.sudo) for n in self.env.nodes}

    @cached_property
    def engines(self) -> dict[str, Engine]:
        return {n.name: Engine(n.docker, n.name, self.hosts[n.name], n.tls, n.engine_via) for n in self.env.nodes}

    @cached_property
    def oms(self) -> dict[str, oms.Oms]:
        """Each node's OMS container (its programs, docker_init.sh, its files), by node name."""
        return {n.name: oms.Oms(self.engines[n.name], self.env.container) for n in self.env.nodes}

    def hot(self, node: str, folder: str) -> HotUpgrade:
        """The hot-upgrade page's commands on ``node`` (OD 309), its scripts in ``folder`` on the node."""
        return HotUpgrade(self.hosts[node], self.engines[node], self.env.container, folder)

    @cached_property
    def consoles(self) -> dict[str, Console]:
        return {
            n.name: Console(self.env.console, n.ip, n.name, functools.partial(self.console_port, n.name))
            for n in self.env.nodes
        }

    # -- the ports each node's config.yaml sets ------------------------------------------------
    def remember_config(self, node: str, cfg: dict[str, Any]) -> tuple[int, int]:
        """The (console, CM) ports of ``node``'s config.yaml as read (the preflight and the probe read it)."""
        ports = oms.ports_of(cfg, f"node {node}: config.yaml")
        with self._ports_lock:
            self._ports[node] = ports
        return ports

    def node_ports(self, node: str) -> tuple[int, int]:
        """(console, CM) ports of ``node``: as the preflight recorded them, else read from its config.yaml now."""
        with self._ports_lock:
            if node in self._ports:
                return self._ports[node]
        recorded = self.recorded.ports(node)
        if recorded is not None:
            ports = recorded
        else:
            n = next(x for x in self.env.nodes if x.name == node)
            attrs = self.engines[node].inspect(self.recorded.container(node) or self.env.container)
            if attrs is None:
                attrs = self.engines[node].inspect(self.env.container) or {}
            binds = [b for b in ((attrs.get("HostConfig") or {}).get("Binds") or []) if isinstance(b, str)]
            cfg = oms.read_config(self.hosts[node], self.engines[node], self.env.container, binds, n.name)
            return self.remember_config(node, cfg)
        with self._ports_lock:
            self._ports[node] = ports
        return ports

    def console_port(self, node: str) -> int:
        """The environment file's console.port, else the node's config.yaml's (8089 when it sets none)."""
        return self.env.console.port or self.node_ports(node)[0]

    def cm(self, ip: str) -> CM:
        """The Cluster Manager on ``ip`` (a node of the environment: its config.yaml's port; else 8088)."""
        node = next((n for n in self.env.nodes if n.ip == ip), None)
        if node is None:
            return CM(ip, f"cm {ip}")
        return CM(ip, f"cm {node.name}", self.node_ports(node.name)[1])

    @cached_property
    def backup_host(self) -> Host:
        """The backup host (no sudo: the dumps are the SSH user's); named after its node when it is one."""
        env = self.env
        node = next((n for n in env.nodes if n.host == env.backup.host), None)
        return Host(
            env.backup.host, node.name if node else f"backup host {env.backup.host}", node=node.name if node else None
        )

    @cached_property
    def metadb(self) -> MetaDB:
        return MetaDB(self.env.metadb)

    def close(self) -> None:
        for eng in self.__dict__.get("engines", {}).values():
            eng.close()


class RecordedBy:
    """``Recorded`` from a run's record: what its preflight (or the upgrade it undoes) recorded of each node."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def _node(self, node: str) -> NodeFacts | None:
        f = self.record.facts
        return f.nodes.get(node) or (f.upgrade.nodes.get(node) if f.upgrade else None)

    def ports(self, node: str) -> tuple[int, int] | None:
        nf = self._node(node)
        return (nf.console_port, nf.cm_port) if nf is not None and nf.console_port and nf.cm_port else None

    def container(self, node: str) -> str | None:
        nf = self._node(node)
        return nf.container_id if nf is not None else None


class Run:
    """One run of a runbook: the runbook, its release, its record, where its evidence goes and the live view; the
    deployment it works on (``Deployment``) is reached through it."""

    def __init__(
        self,
        env: Environment,
        runbook: Runbook,
        record: Record,
        resumed: bool,
        plan: bool,
        until: int | None,
        reporter: Reporter | None = None,
        live: Callable[[str], None] | None = None,
    ) -> None:
        self.env = env
        self.runbook = runbook
        self.record = record
        self.resumed = resumed
        self.plan = plan
        self.until = until
        self.reporter: Reporter = reporter or NullReporter()
        self.live: Callable[[str], None] = live or (lambda msg: None)  # the terminal's live view
        self.plans: dict[str, list[str]] = {}
        self.current: RunbookStep | None = None
        self.background: dict[str, Future[Any]] = {}  # work started early (e.g. loading the image)
        self.deployment = Deployment(env, RecordedBy(record))
        self.rehearsal_file: str | None = None  # --rehearsal: the rehearsal this run follows
        self.keep_replica = False  # --keep-replica: a rehearsal leaves its replica
        self.scratch: dict[str, Any] = {}  # what a step hands a later one in this run only (never recorded)
        self._on_close: list[Callable[[], None]] = []

    @property
    def facts(self) -> Facts:
        return self.record.facts

    @cached_property
    def release(self) -> Release:
        """The release the runbook takes the deployment to (an upgrade's target; a rollback undoes an upgrade to
        it). A runbook that upgrades nothing (the probe, the Connector fix) has none: its steps read the version that
        runs (steps/readings.py)."""
        if self.runbook.kind.value == "maintenance":
            raise OmsupError(f"{self.runbook.name} upgrades nothing: it has no target release")
        return release_of(self.runbook.target)

    def node_facts(self, node: str) -> NodeFacts:
        """What the preflight recorded of ``node``'s old container."""
        nf = self.facts.nodes.get(node)
        if nf is None:
            raise PreconditionRefused(
                f"the run ledger {self.record.path} has no record of node {node}'s old container",
                "the preflight of this run did not finish; run the runbook from the start",
            )
        return nf

    # -- the deployment's adapters (Deployment): the same objects for the whole run --------------
    @property
    def hosts(self) -> dict[str, Host]:
        return self.deployment.hosts

    @property
    def engines(self) -> dict[str, Engine]:
        return self.deployment.engines

    @property
    def oms(self) -> dict[str, oms.Oms]:
        return self.deployment.oms

    def hot(self, node: str, folder: str) -> HotUpgrade:
        return self.deployment.hot(node, folder)

    @property
    def consoles(self) -> dict[str, Console]:
        return self.deployment.consoles

    def remember_config(self, node: str, cfg: dict[str, Any]) -> tuple[int, int]:
        return self.deployment.remember_config(node, cfg)

    def node_ports(self, node: str) -> tuple[int, int]:
        return self.deployment.node_ports(node)

    def console_port(self, node: str) -> int:
        return self.deployment.console_port(node)

    def cm(self, ip: str) -> CM:
        return self.deployment.cm(ip)

    @property
    def backup_host(self) -> Host:
        return self.deployment.backup_host

    @property
    def metadb(self) -> MetaDB:
        return self.deployment.metadb

    def on_close(self, fn: Callable[[], None]) -> None:
        """``fn`` runs when the run ends, whatever its outcome (last registered, first run)."""
        self._on_close.append(fn)

    def close(self) -> None:
        while self._on_close:
            fn = self._on_close.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - every closing action runs; each failure is said
                self.live(f"WARNING: at the end of the run: {first_line(e)}")
        self.deployment.close()

    # -- concurrency across nodes -------------------------------------------------------------
    def each_node(self, fn: Callable[[Node], T], nodes: list[Node] | None = None, what: str = "") -> dict[str, T]:
        """Run ``fn`` on every node concurrently; report each node's part as a sub-step.

        Raises the failure of the first failed node (in node order) after every node finished,
        with the other nodes' failures in the message.
        """
        chosen = list(nodes if nodes is not None else self.env.nodes)
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

        with ThreadPoolExecutor(max_workers=max(1, min(16, len(chosen)))) as pool:
            list(pool.map(work, chosen))
        for n in chosen:  # per-node sub-steps, reported from this thread
            status = "failed" if n.name in errors else "ok"
            with self.reporter.part(
                f"node {n.name} ({n.ip}): {what or 'done'} — {status} in {timings.get(n.name, 0):.1f}s"
            ):
                events = AUDIT.of_step(AUDIT.step, n.name)
                if events:
                    self.evidence(f"{n.name}: commands", "\n".join(e.line() for e in events))
                if results.get(n.name) is not None:
                    self.evidence(f"{n.name}: result", results[n.name])
                if n.name in errors:
                    err = errors[n.name]
                    self.evidence(f"{n.name}: error", f"{type(err).__name__}: {err}")
        if errors:
            first = next(n.name for n in chosen if n.name in errors)
            err = errors[first]
            if len(errors) > 1 and isinstance(err, OmsupError):
                others = "; ".join(
                    f"{k}: {(str(v).splitlines() or [type(v).__name__])[0]}" for k, v in errors.items() if k != first
                )
                err.add_note_to_message(f"other nodes failed too: {others}")
            raise err
        return results

    def in_background(self, key: str, fn: Callable[[], T]) -> Future[T]:
        """Start ``fn`` now, in its own thread, its events attributed to step ``key``."""

        def work() -> T:
            with AUDIT.in_step(key):
                return fn()

        fut: Future[T] = ThreadPoolExecutor(max_workers=1).submit(work)
        self.background[key] = fut
        return fut

    def each_node_in_step(self, key: str, fn: Callable[[Node], T]) -> dict[str, T]:
        """``fn`` on every node concurrently, in threads whose events belong to step ``key``."""

        def one(n: Node) -> T:
            with AUDIT.node(n.name), AUDIT.in_step(key):
                return fn(n)

        with ThreadPoolExecutor(max_workers=max(1, len(self.env.nodes))) as pool:
            return dict(zip([n.name for n in self.env.nodes], pool.map(one, self.env.nodes), strict=True))

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
        """Attach ``obj`` (text, or anything JSON can show) to the current step, redacted."""
        if isinstance(obj, str):
            self.reporter.attach(redact(name), redact(obj), False)
        else:
            if hasattr(obj, "model_dump"):
                obj = obj.model_dump(mode="json", by_alias=True)
            elif isinstance(obj, list) and obj and hasattr(obj[0], "model_dump"):
                obj = [x.model_dump(mode="json", by_alias=True) for x in obj]
            text = json.dumps(redact_obj(obj), indent=2, sort_keys=True, default=str, ensure_ascii=False)
            self.reporter.attach(redact(name), text, True)

    def warn(self, text: str) -> None:
        """Something the documents leave open looked unusual: kept in the ledger (the summary and the report lead
        with it), attached to the step and shown on the terminal. Never a stop."""
        shown = redact(text)
        self.evidence("warning", shown)
        self.live(f"WARNING: {shown}")
        with self.record.change() as f:
            if shown not in f.warnings:
                f.warnings.append(shown)

    def would(self, lines: list[str]) -> None:
        """In plan mode: what the current step would do."""
        assert self.current is not None
        self.plans[self.current.label] = [redact(x) for x in lines]


def first_line(e: BaseException) -> str:
    return (redact(str(e)).splitlines() or [type(e).__name__])[0]
