"""The rollback's restore: drop, recreate and restore rm, cm and every cm_hb (doc 003 step 6.3-6.4, doc 004 step 9.3-9.4).

Nothing is dropped before the preflight verified every backup (size, SHA-256, completion marker)
and recorded each file's identity (size, modification time in ns, inode). Right before its
database is dropped a backup is checked again: its identity and completion marker when the
identity is the one recorded (the file was neither rewritten nor replaced since it was hashed:
no second full read during the outage), a full hash otherwise. The record says, database by
database, how far the restore got, so an interrupted restore resumes from the same backups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import history
from ..adapters.metadb import DIGEST
from ..context import Run
from ..record import Record, RolledBack, utc_now
from ..runbook import Step, Touches
from .backup import recheck_backup
from .containers import upgrade_ref


def mark_rolled_back(run: Run, ledger: str) -> None:
    """The upgrade whose ledger is ``ledger`` is undone: its record says so (by this run), and a second rollback of it
    is refused."""
    rec = Record.load(Path(ledger))
    if rec.data.rolled_back is None:
        with rec.lock:
            rec.data.rolled_back = RolledBack(by=run.record.run_id, at=utc_now())
            rec.save()


def upgrade_record(run: Run) -> Record:
    """The record of the upgrade this rollback undoes (history.undoable_upgrade)."""
    return history.undoable_upgrade(run.env.state_dir, run.runbook.upgrade_runbook, run.env.name)


def restore(run: Run) -> None:
    bh = run.backup_host
    for b in upgrade_ref(run).backups:
        db = b.db
        if run.facts.restored.get(db) == "restored":
            continue
        # unchanged since the preflight hashed it: its marker only; else hashed in full, before any DROP
        hashed_as = run.facts.backups_hashed.get(b.path)
        seen = recheck_backup(bh, b, f"; nothing of {db} was dropped", hashed_as)
        if hashed_as and seen == hashed_as:
            run.live(f"restore: {b.path} unchanged since it was hashed (size, mtime, inode, ctime)")
        run.live(f"restore: {db} from {b.path}")
        with run.record.change() as f:
            f.restored[db] = "dropping"
        run.metadb.drop_and_create(db, b.charset or "utf8mb4", b.collation or "utf8mb4_general_ci")
        with run.record.change() as f:
            f.restored[db] = "restoring"
        run.metadb.restore(bh, run.env.backup_dir, db, b.path)
        with run.record.change() as f:
            f.restored[db] = "restored"
    run.evidence("restored", dict(run.facts.restored))


def plan_restore(run: Run) -> list[str]:
    out = []
    for b in upgrade_record(run).facts.backups:
        out += [
            f"check {b.path}: unchanged since the preflight hashed it (size {b.size}, mtime, inode), else "
            f"hashed again (sha256 {b.sha256[:16]}...)",
            f"DROP DATABASE `{b.db}`; CREATE DATABASE `{b.db}`",
            f"mysql --defaults-extra-file=<0600 file> -D {b.db} < {b.path} (on OceanBase with --init-command setting "
            "the session's ob_query_timeout and ob_trx_timeout to a day, not the tenant's global values)",
        ]
    return out


RESTORE = Step(
    "restore",
    "Drop, recreate and restore rm, cm and every cm_hb",
    restore,
    frozenset({Touches.METADB, Touches.BACKUP}),
    True,
    plan_restore,
    no_way_back=True,
)


def verify_restore(run: Run) -> None:
    """Per-table row counts and content digests equal those recorded when each backup was taken."""
    diffs = []
    report: dict[str, Any] = {}
    up = upgrade_ref(run)
    for b in up.backups:
        # the digest the backup took (an older version's backups: its kind), so like is compared with like
        kinds = {s.kind for s in b.tables.values()} or {DIGEST}
        assert len(kinds) == 1, f"the backup of {b.db} records digests of several kinds: {sorted(kinds)}"
        now = run.metadb.table_digests(b.db, kinds.pop())
        then = {t: s.model_dump() for t, s in b.tables.items()}
        report[b.db] = {"at_backup": then, "now": now}
        if now != then:
            for t in sorted(set(now) | set(then)):
                if now.get(t) != then.get(t):
                    diffs.append(f"{b.db}.{t}: backup {then.get(t)}, now {now.get(t)}")
    run.evidence("tables: at backup time and after the restore", report)
    assert not diffs, "restored tables differ from the backup:\n  " + "\n  ".join(diffs)
    before = up.versions.oms_version_before if up.versions else None
    rows = run.metadb.oms_versions(run.env.metadb.rm)
    run.evidence("oms_version after the restore", {"now": rows, "before the upgrade": before})
    assert rows == before, f"oms_version is {rows}, before the upgrade it was {before}"


VERIFY_RESTORE = Step(
    "verify_restore",
    "Verify the restore (row counts, content digests, oms_version)",
    verify_restore,
    frozenset({Touches.METADB}),
    False,
    None,
    verify_restore,
)
