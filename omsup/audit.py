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
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

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

    def record(
        self, system: str, target: str, action: str, outcome: str, seconds: float, node: str | None = None
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
        )
        with self._lock:
            self.events.append(ev)
            if self.sink is not None:
                fd = os.open(self.sink, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a") as f:
                    f.write(json.dumps(asdict(ev)) + "\n")
        log.info("%s", ev.line())
        return ev

    def of_step(self, step: str | None, node: str | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.step == step and (node is None or e.node == node)]


AUDIT = Audit()
