"""The run ledger: what a run learned (T1/T2/T3, binds, backup manifest, versions), on disk.

Written atomically (temporary file, fsync, rename) right after the step that learned it, with
mode 0600, so a crash, Ctrl-C or a lost terminal never loses the way back. A run of a runbook
that did not complete is resumed by the next run of the same runbook on the same environment:
finished steps are verified, not redone.

Layout: ``<state_dir>/<runbook>/<run_id>/ledger.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import LedgerError
from .redact import redact_obj

COMPLETE, RUNNING, ABANDONED = "complete", "running", "abandoned"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Ledger:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        # nodes are handled concurrently: every change and every write holds this lock, so no
        # write ever serializes a dict another thread is changing
        self.lock = threading.RLock()

    # -- finding and creating --------------------------------------------------------------
    @staticmethod
    def runs(state_dir: str | Path, runbook: str) -> list[Ledger]:
        """Every ledger of ``runbook`` under ``state_dir``, oldest first."""
        root = Path(state_dir) / runbook
        out = []
        if root.is_dir():
            for p in sorted(root.glob("*/ledger.json")):
                try:
                    out.append(Ledger(p, json.loads(p.read_text())))
                except (OSError, ValueError) as e:
                    raise LedgerError(f"run ledger {p} is unreadable: {e}",
                                      "restore it from the report folder's copy, or move it aside deliberately") from e
        return out

    @classmethod
    def open(cls, state_dir: str | Path, runbook: str, env_name: str, facts: dict[str, Any]) -> tuple[Ledger, bool]:
        """The unfinished run of ``runbook`` to resume, or a new one. Returns (ledger, resumed)."""
        for led in reversed(cls.runs(state_dir, runbook)):
            if led.data.get("status") == RUNNING:
                if led.data.get("env") != env_name:
                    continue
                return led, True
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = Path(state_dir) / runbook / run_id / "ledger.json"
        led = cls(path, {"runbook": runbook, "env": env_name, "run_id": run_id, "created": utc_now(),
                         "status": RUNNING, "steps": {}, "facts": dict(facts), "attempts": 0})
        led.save()
        return led, False

    @classmethod
    def latest(cls, state_dir: str | Path, runbook: str, env_name: str) -> Ledger | None:
        for led in reversed(cls.runs(state_dir, runbook)):
            if led.data.get("env") == env_name and led.data.get("status") != ABANDONED:
                return led
        return None

    # -- recording ---------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self.data["run_id"])

    @property
    def facts(self) -> dict[str, Any]:
        return self.data["facts"]

    def save(self) -> None:
        with self.lock:
            write_json_atomic(self.path, redact_obj(self.data))

    def set(self, key: str, value: Any) -> None:
        """Record a fact and write the ledger at once."""
        with self.lock:
            self.data["facts"][key] = value
            self.save()

    def get(self, key: str, default: Any = None) -> Any:
        return self.data["facts"].get(key, default)

    def set_in(self, key: str, sub: str, field: str, value: Any) -> None:
        """Record ``facts[key][sub][field] = value`` (a per-node fact) and write at once; thread-safe."""
        with self.lock:
            self.data["facts"].setdefault(key, {}).setdefault(sub, {})[field] = value
            self.save()

    def step_done(self, step: str) -> bool:
        return self.data["steps"].get(step, {}).get("status") == "done"

    def step_started(self, step: str) -> bool:
        """The step began in this run (running, failed or done): it may have changed things."""
        return step in self.data["steps"]

    def mark(self, step: str, status: str, **extra: Any) -> None:
        with self.lock:
            entry = self.data["steps"].setdefault(step, {})
            if status != "failed" and "error" in entry:  # an earlier attempt's failure stays, as history
                entry.setdefault("earlier_failures", []).append(
                    {k: entry.pop(k) for k in ("at", "category", "error") if k in entry})
            entry.update({"status": status, "at": utc_now(), **extra})
            self.save()

    def finish(self, status: str = COMPLETE) -> None:
        self.data["status"] = status
        self.data["finished"] = utc_now()
        self.save()
