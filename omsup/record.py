"""The run record: what a run learned (T1/T2/T3, binds, backup manifest, versions), typed, on disk.

Every fact has a declared field; steps, the rollback and the report read fields, never string
keys, so a typo is an error of the type checker, not a KeyError in the middle of an upgrade.
The record is written atomically (temporary file, fsync, rename, mode 0600) right after the
step that learned something, so a crash, Ctrl-C or a lost terminal never loses the way back.
It is never redacted: a resume and a rollback read it back as it was (the report folder gets a
redacted copy). A run that did not complete is resumed by the next run of the same runbook on
the same environment: finished steps are verified, not redone; unless it was rolled back, or
abandoned by an operator (``omsup abandon``), after which the next run starts anew.

Layout: ``<state_dir>/<runbook>/<run_id>/ledger.json``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from .errors import LedgerError
from .redact import excerpt, printable

MAX_RECORD_BYTES = 64 * 1024 * 1024  # a record is a few KB; anything near this is not ours


def utc_now() -> str:
    """The current time, UTC, ISO 8601 with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)")


def _a_time(v: str) -> str:
    if not UTC_TIME.fullmatch(v):
        raise ValueError("expected an ISO 8601 time with its zone, such as 2026-12-06T01:02:03.456Z")
    try:
        parse_utc(v)
    except ValueError:
        raise ValueError("expected an ISO 8601 time that exists, such as 2026-12-06T01:02:03.456Z") from None
    return v


# a time a ledger holds: ISO 8601 with its zone, checked when the ledger is read back (a naive or garbled
# time would be compared with aware ones, or parsed, in the middle of a resume or a rollback)
Time = Annotated[str, AfterValidator(_a_time)]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path``: a 0600 temporary file, fsync, rename, fsync of the folder."""
    text = data if isinstance(data, str) else json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    replace_file(path, text)


def replace_file(path: Path, text: str) -> None:
    """``path`` holds ``text`` (0600): written beside it and renamed over it, so a symlink there is replaced,
    never written through, and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
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


def read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes: its type and size checked before a
    byte is read; never a symlink, FIFO, device or folder. Raises ValueError saying what it is instead."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{what} {path} is not a regular file (mode {stat.filemode(st.st_mode)})")
        if st.st_size > limit:
            raise ValueError(f"{what} {path} is {st.st_size} bytes, more than a {what} ever holds ({limit})")
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ValueError(f"{what} {path} grew past {limit} bytes while it was read")
        return b"".join(chunks)
    finally:
        os.close(fd)


class Model(BaseModel):
    """Closed records: an unknown field is an error, on load and on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# -- what the preflight learns ---------------------------------------------------------------
class NodeFacts(Model):
    """A node's old container as the preflight found it, and what the run did to it."""

    container_id: str
    name: str
    image: str
    image_id: str
    binds: list[str]
    env: list[str]
    user_env: dict[str, str]
    version: str | None
    cm_nodes: list[str]
    started_at: str | None = None  # State.StartedAt as last seen (preflight, stop): started after the backups?
    console_port: int | None = None  # from its config.yaml (nginx_server_port, 8089 when it sets none)
    cm_port: int | None = None  # from its config.yaml (cm_server_port, 8088 when it sets none)
    kept_as: str | None = None  # the old container's name while the new one runs
    new_container_id: str | None = None
    new_kept_as: str | None = None  # the new container's name after a rollback


class Versions(Model):
    source: str
    target: str
    oms_version_before: list[str] | None


class Package(Model):
    path: str
    image: str  # the reference the archive's manifest names
    image_id: str | None = None  # what `docker load` gave (the same on every node)


class Project(Model):
    id: str
    name: str | None
    type: str | None
    status: str | None
    steps: dict[str, str | None]
    forbidden: str | None


# -- what later steps learn ------------------------------------------------------------------
class PruneResult(Model):
    rows_before: int
    max_id: int | None
    deleted: int
    rows_after: int


class OnlinePrune(Model):
    """Heartbeats deleted before T1, while OMS ran, in short statements over id ranges."""

    below_id: int | None  # max(id) when it began: every row below it was deleted
    deleted: int
    statements: int
    started: Time
    ended: Time


class PurgeWait(Model):
    """After the online prune, before T1: the wait until the MetaDB removed the deleted heartbeats from
    its indexes (until then the document's DELETE at its step steps over them, in the outage)."""

    method: str  # how it was watched
    seen: dict[str, Any]  # what was seen last
    seconds: float
    settled: bool  # the deleted rows gone (else: the wait's limit was reached)


class TableStat(Model):
    rows: int
    digest: str  # computed by the MetaDB server over every row (omsup.adapters.metadb.table_digests)
    kind: str = "crc32+md5"  # which digest (adapters.metadb.DIGESTS); ledgers from before kinds: crc32+md5


class BackupFile(Model):
    role: str
    db: str
    host: str
    path: str
    size: int
    sha256: str
    tables: dict[str, TableStat]
    charset: str
    collation: str
    taken: Time


class InitAttempt(Model):
    started: Time
    ended: Time | None = None
    rc: int | None = None  # None: it began and no end was seen (the run was interrupted)
    output: str = ""
    flag: str | None = None  # /root/init_flag.txt afterwards: evidence (no public source says docker_init.sh writes it)
    after: str | None = None
    recognized: bool = False  # (ledgers of omsup 0.2: a completed init found in place, not run again)
    schema_before: str | None = None  # the metadata's tables and columns right before it ran
    schema_after: str | None = None
    oms_version_before: list[str] | None = None
    oms_version_after: list[str] | None = None


class Recovery(Model):
    version: str
    at: Time


class Verified(Model):
    oms_version: list[str] | None
    servers: list[dict[str, Any]]
    images: dict[str, str]
    oms_version_names: str | None = None  # "target", "source" (the product did not write it) or "none"


class Refetch(Model):
    """How refetchStoreIntervalMin was set: the interval it must exceed, and the value set."""

    since: str  # which time the interval starts at (T1)
    until: str  # which time it ends at (T2, or when HA was enabled again)
    start: Time
    end: Time
    minutes_needed: int
    set: int


class ConnectorRow(Model):
    id: str  # the Connector's task name (doc: taskName)
    host: str | None
    project: str | None
    status: str | None
    created_on: str | None
    source_type: str
    has_db_type: bool
    has_checkpoint: bool
    needs_fix: bool
    db_type: str | None


class ConnectorFix(Model):
    how: str  # batch | one
    host: str
    db_type: str = Field(alias="dbType")
    connectors: list[str]

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class ConnectorSurvey(Model):
    connectors: list[ConnectorRow]
    plan: list[ConnectorFix]


class ProcRow(Model):
    pid: int
    args: str


class HotNode(Model):
    """One node's hot upgrade (OD 309), as it went: its work folder and the page's scripts there (SHA-256), when its
    management programs stopped and served again, the container's backup folder step 6 made, step 7's outcome."""

    folder: str
    image: str
    scripts: dict[str, str] = Field(default_factory=dict)
    dumped: Time | None = None
    backups_before: list[str] | None = None  # the container's /home/admin/logs/backup* folders before step 6
    stop_started: Time | None = None  # step 5 began: the console and the CM are unavailable from here
    stopped: Time | None = None
    stop_output: str | None = None
    survivors: list[ProcRow] = Field(default_factory=list)  # the processes that outlived step 5's stop
    copy_started: Time | None = None
    backup_folder: str | None = None
    copied: Time | None = None
    init_started: Time | None = None
    init_rc: int | None = None
    init_output: str | None = None
    serving: Time | None = None
    unavailable_s: float | None = None  # from the stop to the console and every management program serving again
    survivors_ended: list[ProcRow] | None = None  # of the survivors, those gone once the node served again


class HotBack(Model):
    """One node's hot rollback (OD 309 step 7's rollback), as it went."""

    stopped: Time | None = None
    copied_back: Time | None = None
    copy_output: str | None = None
    init_rc: int | None = None
    init_output: str | None = None
    started: list[str] | None = None  # the management programs started after docker_init.sh left them stopped
    serving: Time | None = None
    unavailable_s: float | None = None


class UpgradeRef(Model):
    """The rollback's copy of what the upgrade it undoes recorded."""

    run_id: str
    ledger: str
    t1: Time | None
    versions: Versions | None
    backups: list[BackupFile]
    nodes: dict[str, NodeFacts]
    ha_before: dict[str, Any] | None
    projects_before: list[Project] | None = None
    hot: dict[str, HotNode] = Field(default_factory=dict)


class Facts(Model):
    target: str
    environment_file: str
    versions: Versions | None = None
    nodes: dict[str, NodeFacts] = Field(default_factory=dict)
    packages: dict[str, Package] = Field(default_factory=dict)
    projects_before: list[Project] | None = None
    projects_after: list[Project] | None = None
    ha_before: dict[str, Any] | None = None
    sizes: dict[str, int] | None = None
    connectors_before: ConnectorSurvey | None = None
    connector_survey: ConnectorSurvey | None = None
    connector_fixes: list[ConnectorFix] | None = None
    t1: Time | None = None
    t2: Time | None = None
    t3: Time | None = None
    prune: dict[str, PruneResult] | None = None
    prune_online: dict[str, OnlinePrune] | None = None
    prune_purge: PurgeWait | None = None
    # OceanBase: the tenant's global timeouts before the backup raised them for the dumps, and whether
    # they were set back (a crash in between leaves them to the next run to set back)
    ob_globals_before: dict[str, int] | None = None
    ob_globals_restored: bool = False
    backup_attempt: int = 0
    backups: list[BackupFile] = Field(default_factory=list)
    init_outputs: dict[str, list[InitAttempt]] = Field(default_factory=dict)
    oms_version_recovery: Recovery | None = None
    serving_again: Time | None = None
    verified: Verified | None = None
    refetch: Refetch | None = None
    upgrade: UpgradeRef | None = None
    restored: dict[str, str] = Field(default_factory=dict)
    # backup path -> "size mtime inode ctime" seen when this run last hashed the file in full: the restore
    # does not read a file again during the outage while its identity is unchanged
    backups_hashed: dict[str, str] = Field(default_factory=dict)
    consoles_started: list[str] = Field(default_factory=list)  # nodes whose oms_console was started by hand
    ha_enabled: Time | None = None  # when a rollback enabled HA again (its refetch interval ends there)
    resumed_projects: list[str] | None = None
    metadb_engine: dict[str, Any] | None = None  # what the preflight found the MetaDB to be
    # the hot upgrade (OD 309): each node's course, the attempt number of the scripts' folder, the components'
    # states before the first node stopped ("project/component" -> status); and its rollback
    hot: dict[str, HotNode] = Field(default_factory=dict)
    hot_attempt: int = 0
    components_before: dict[str, str | None] | None = None
    hot_back: dict[str, HotBack] = Field(default_factory=dict)
    oms_version_set_back: list[str] | None = None  # the rows a hot rollback put back into rm.oms_version
    # what a step saw that the documents leave open and that an operator should know (the summary leads with them)
    warnings: list[str] = Field(default_factory=list)
    # a rehearsal (runbooks/rehearse_*): what it took from production and its replica (plain data), and what it
    # observed (rehearsal.json in the run folder); an upgrade or rollback run with --rehearsal: the rehearsal it
    # follows (its file, date, identities and predicted outage)
    rehearsal: dict[str, Any] | None = None
    rehearsed_with: dict[str, Any] | None = None
    # the probe (runbooks/probe): each assumption's result and what was seen (redacted), for the summary and for a
    # rehearsal that probes its replica
    assumptions: dict[str, dict[str, Any]] | None = None


# -- the run and its steps -------------------------------------------------------------------
class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    ABANDONED = "abandoned"
    NOTHING_TO_DO = "nothing to do"  # refused before any change with nothing it can do (NothingToDo); never resumed


class EarlierFailure(Model):
    at: Time | None = None
    category: str | None = None
    error: str | None = None


StepStatus = Literal["running", "done", "failed"]


class StepEntry(Model):
    status: StepStatus
    at: Time
    seconds: float | None = None
    error: str | None = None
    category: str | None = None
    hint: str | None = None  # what the failure said to do next (redacted)
    resumable: bool = True  # False: the failure said this run is not to be resumed
    earlier_failures: list[EarlierFailure] = Field(default_factory=list)
    # what the step is, written when it began (omsup/history.py reads them; ledgers before 0.4.0 lack them)
    changes: bool | None = None
    no_way_back: bool | None = None


class RolledBack(Model):
    by: str  # the rollback's run id
    at: Time


class Abandoned(Model):
    by: str  # who said so (user@machine)
    at: Time
    reason: str


class RunBy(Model):
    """Who started an attempt of the run: the operator, and the CI job where one ran it."""

    at: Time
    operator: str
    ci: dict[str, str | None] | None = None


class RunData(Model):
    runbook: str
    env: str
    run_id: str
    created: Time
    status: RunStatus = RunStatus.RUNNING
    finished: Time | None = None
    attempts: int = 0
    attempts_by: list[RunBy] = Field(default_factory=list)  # one per attempt (none in ledgers before 0.3.0)
    steps: dict[str, StepEntry] = Field(default_factory=dict)
    facts: Facts
    rolled_back: RolledBack | None = None  # an upgrade whose rollback completed: not rolled back twice
    abandoned: Abandoned | None = None  # an unfinished run called off (omsup abandon): never resumed


class Record:
    """One run's record and where it lives; every change holds the lock and is written at once."""

    def __init__(self, path: Path | None, data: RunData) -> None:
        self.path = path  # None: a plan run, never written
        self.data = data
        # nodes are handled concurrently: every change and every write holds this lock, so no
        # write ever serializes a model another thread is changing
        self.lock = threading.RLock()

    # -- finding and creating --------------------------------------------------------------
    @staticmethod
    def load(path: Path) -> Record:
        """Read a record; anything that is not a record of this project is a LedgerError naming the file and,
        for a value that is not what omsup writes, its key. The file's type and size are checked before a byte
        is read (a FIFO would hang the read, /dev/zero fill the memory)."""
        advice = (
            "move it aside deliberately (it was not written as it is by omsup); the run's backups stay where they are"
        )
        try:
            data = read_regular_file(path, MAX_RECORD_BYTES, "run ledger")
            return Record(path, RunData.model_validate_json(data))
        except ValidationError as e:
            errors = e.errors(include_url=False)
            said = "; ".join(
                f"key {'.'.join(str(x) for x in err['loc']) or '(top level)'}: {err['msg']}"
                + (f", saw {printable(excerpt(err['input'], 60))!r}" if err["type"] != "missing" else "")
                for err in errors[:3]
            )
            raise LedgerError(
                f"run ledger {path} holds a value omsup does not write: {said}"
                + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""),
                advice,
            ) from None
        except (OSError, ValueError) as e:
            first = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            raise LedgerError(f"run ledger {path} is unreadable: {printable(first)}", advice) from None

    @staticmethod
    def runbooks(state_dir: str | Path) -> list[str]:
        """The runbooks that have records under ``state_dir`` (one folder each), by name."""
        root = Path(state_dir)
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    @staticmethod
    def runs(state_dir: str | Path, runbook: str, env_name: str) -> list[Record]:
        """Every record of ``runbook`` on environment ``env_name`` under ``state_dir``, oldest first."""
        root = Path(state_dir) / runbook
        found = [Record.load(p) for p in sorted(root.glob("*/ledger.json"))] if root.is_dir() else []
        return [r for r in found if r.data.env == env_name]

    @classmethod
    def open(cls, state_dir: str | Path, runbook: str, env_name: str, facts: Facts) -> tuple[Record, bool]:
        """The unfinished run of ``runbook`` on ``env_name`` to resume, or a new one. Returns (record, resumed).

        An upgrade that stopped half way and was then rolled back is unfinished but over: the next
        run starts anew (with backups of the data as it is then), never from its steps."""
        rec = cls.unfinished(state_dir, runbook, env_name)
        if rec is not None:
            return rec, True
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = Path(state_dir) / runbook / run_id / "ledger.json"
        rec = cls(path, RunData(runbook=runbook, env=env_name, run_id=run_id, created=utc_now(), facts=facts))
        rec.save()
        return rec, False

    @classmethod
    def unfinished(cls, state_dir: str | Path, runbook: str, env_name: str) -> Record | None:
        """The run of ``runbook`` on ``env_name`` a new run resumes: the newest still running that
        was neither rolled back nor abandoned."""
        for rec in reversed(cls.runs(state_dir, runbook, env_name)):
            if rec.is_unfinished:
                return rec
        return None

    @classmethod
    def in_memory(cls, runbook: str, env_name: str, facts: Facts) -> Record:
        """A record that is never written: plan mode changes nothing, not even the state folder."""
        return cls(None, RunData(runbook=runbook, env=env_name, run_id="plan", created=utc_now(), facts=facts))

    # -- reading ---------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.data.run_id

    @property
    def facts(self) -> Facts:
        return self.data.facts

    @property
    def is_unfinished(self) -> bool:
        """Still running and not rolled back: what a new run of its runbook resumes (the newest such)."""
        return self.data.status == RunStatus.RUNNING and self.data.rolled_back is None

    def step_done(self, key: str) -> bool:
        entry = self.data.steps.get(key)
        return entry is not None and entry.status == "done"

    def step_started(self, key: str) -> bool:
        """The step began in this run (running, failed or done): it may have changed things."""
        return key in self.data.steps

    # -- recording -------------------------------------------------------------------------
    def save(self) -> None:
        with self.lock:
            if self.path is not None:
                write_json_atomic(self.path, self.data.model_dump_json(indent=2, by_alias=True))

    @contextmanager
    def change(self) -> Iterator[Facts]:
        """``with record.change() as f: f.t1 = ...``: the change is written when the block ends."""
        with self.lock:
            yield self.data.facts
            self.save()

    def mark(
        self,
        key: str,
        status: StepStatus,
        seconds: float | None = None,
        error: str | None = None,
        category: str | None = None,
        hint: str | None = None,
        resumable: bool = True,
        kind: tuple[bool, bool] | None = None,
    ) -> None:
        """The step ``key``'s status; ``kind`` (changes, no_way_back) is what the step is, written when it begins."""
        with self.lock:
            entry = self.data.steps.get(key)
            if entry is None:
                entry = StepEntry(status=status, at=utc_now())
                self.data.steps[key] = entry
            if kind is not None:
                entry.changes, entry.no_way_back = kind
            elif entry.error is not None and (status != "failed" or entry.status == "done"):
                # an earlier attempt's failure (or a done step's failed verification) stays, as history
                entry.earlier_failures.append(EarlierFailure(at=utc_now(), category=entry.category, error=entry.error))
                entry.error = entry.category = entry.hint = None
                entry.resumable = True
            if not (status == "done" and entry.status == "done"):  # a done step keeps the time it was done at
                entry.at = utc_now()
            entry.status = status
            if seconds is not None:
                entry.seconds = seconds
            if error is not None:
                entry.error, entry.category, entry.hint, entry.resumable = error, category, hint, resumable
            self.save()

    def attempt(self, operator: str, ci: dict[str, str | None] | None = None) -> None:
        with self.lock:
            self.data.attempts += 1
            self.data.attempts_by.append(RunBy(at=utc_now(), operator=operator, ci=ci))
            self.save()

    def abandon(self, by: str, reason: str) -> None:
        """Called off by an operator: kept as it is, for the audit, and never resumed."""
        with self.lock:
            self.data.abandoned = Abandoned(by=by, at=utc_now(), reason=reason)
        self.finish(RunStatus.ABANDONED)

    def finish(self, status: RunStatus = RunStatus.COMPLETE) -> None:
        with self.lock:
            self.data.status = status
            self.data.finished = utc_now()
            self.save()
