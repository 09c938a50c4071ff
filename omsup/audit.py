"""The choke point every adapter reports through: one record per command, statement or request.

Each adapter calls ``record`` once per outside call. The record is redacted here, logged
once, appended to the run's ``events.jsonl``, and kept so that the runbook plugin attaches a
step's records to that step in the report. Steps never do report plumbing themselves.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import OmsupError
from .redact import redact

log = logging.getLogger("omsup")


@dataclass(frozen=True)
class Event:
    time: str
    system: str  # host | engine | metadb | console
    target: str  # where it ran: node name, host spec, database
    action: str  # the command, statement or request, redacted
    outcome: str  # exit code, rows, HTTP status, error, redacted
    seconds: float
    node: str | None
    step: str | None
    # "call" (a command, statement or request), or a milestone of the run: run_start, step_start, step_end,
    # run_end (system "run"; outcome: the step's or the run's status)
    event: str = "call"
    run_id: str | None = None

    def line(self) -> str:
        where = f"{self.node}@{self.target}" if self.node and self.node != self.target else self.target
        return f"{self.time} [{self.system} {where}] {self.action}  ->  {self.outcome} ({self.seconds:.2f}s)"


class Audit:
    """Collects the events of a run; thread-safe (nodes are handled concurrently)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []
        self.step: str | None = None
        self.sink: Path | None = None
        self.stream_fd: int | None = None  # --events -: the same lines on this descriptor (stdout, not captured)
        self.run_id: str | None = None
        self._local = threading.local()

    def set_sink(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sink = path

    @contextmanager
    def _override(self, attr: str, value: str) -> Iterator[None]:
        prev = getattr(self._local, attr, None)
        setattr(self._local, attr, value)
        try:
            yield
        finally:
            setattr(self._local, attr, prev)

    def node(self, name: str) -> AbstractContextManager[None]:
        """Attribute the events of this thread to node ``name``."""
        return self._override("node", name)

    def in_step(self, step: str) -> AbstractContextManager[None]:
        """Attribute the events of this thread to ``step`` (work started early, in the background)."""
        return self._override("step", step)

    def stream_to(self, fd: int | None) -> None:
        self.stream_fd = fd

    def milestone(self, event: str, target: str, what: str, outcome: str = "", seconds: float = 0.0) -> Event:
        """A point of the run itself (run_start, step_start, step_end, run_end) among its calls: a pipeline
        follows the run from events.jsonl (or ``--events -``) without parsing the terminal."""
        return self.record("run", target, what, outcome, seconds, event=event)

    def record(
        self,
        system: str,
        target: str,
        action: str,
        outcome: str,
        seconds: float,
        node: str | None = None,
        event: str = "call",
    ) -> Event:
        ev = Event(
            time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            system=system,
            target=redact(target),
            action=redact(action),
            outcome=redact(outcome),
            seconds=round(seconds, 3),
            node=node or getattr(self._local, "node", None),
            step=getattr(self._local, "step", None) or self.step,
            event=event,
            run_id=self.run_id,
        )
        line = json.dumps(asdict(ev)) + "\n"
        with self._lock:
            self.events.append(ev)
            if self.sink is not None:
                fd = os.open(self.sink, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a") as f:
                    f.write(line)
            if self.stream_fd is not None:
                try:
                    os.write(self.stream_fd, line.encode())
                except OSError:  # the reader went away (a closed pipe): the run goes on, events.jsonl has it all
                    self.stream_fd = None
        if event == "call":
            log.info("%s", ev.line())
        return ev

    def of_step(self, step: str | None, node: str | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.event == "call" and e.step == step and (node is None or e.node == node)]


AUDIT = Audit()


@dataclass
class Call:
    """One outside call while it runs: the adapter sets ``outcome`` when it succeeds and may set ``failure``
    (what the record says, e.g. "not found") before it raises; otherwise the raised error's words are recorded."""

    action: str  # what the record says ran; the adapter may make it exact once it knows (a statement's arguments)
    outcome: str = "ok"
    failure: str | None = None


def failure_of(e: BaseException) -> str:
    """What a record says of a call that raised: the tool's own message (an omsup error), else the exception."""
    if isinstance(e, KeyboardInterrupt | SystemExit):
        return f"interrupted ({type(e).__name__})"
    return f"failed: {e.message}" if isinstance(e, OmsupError) else f"failed: {type(e).__name__}: {e}"


@contextmanager
def call(system: str, target: str, action: str, node: str | None = None) -> Iterator[Call]:
    """The choke point of the adapters: every command, statement or request runs inside one of these, timed and
    recorded exactly once, whether it succeeds, fails or is interrupted, before the adapter's own error (which the
    adapter raises inside the block, mapped from the library's) leaves it."""
    c = Call(action)
    t0 = time.monotonic()
    try:
        yield c
    except BaseException as e:
        AUDIT.record(system, target, c.action, c.failure or failure_of(e), time.monotonic() - t0, node=node)
        raise
    AUDIT.record(system, target, c.action, c.outcome, time.monotonic() - t0, node=node)
