"""The backup of rm, cm and every region's cm_hb (doc 003 step 2.3, doc 004 step 3.1).

`mysqldump --triggers=false <db> > <db>.sql` for each database, "make sure that the sizes of the
files are not 0". Here also: the completion marker, size and SHA-256 in the record, per-table
row counts and content digests beside each dump. Every attempt writes a new folder: nothing is ever
overwritten, and a backup once verified is checked again before anything depends on it.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ..adapters.hosts import Host
from ..adapters.metadb import DUMP_MARKER, OB_DUMP_GLOBALS, OB_LONG_US
from ..audit import AUDIT
from ..context import Run
from ..errors import BackupProblem
from ..record import BackupFile, TableStat, utc_now
from ..runbook import Step, Touches
from ..versions import rule_of_runbook

DUMPS_AT_ONCE = 3  # mysqldumps side by side (rm, cm, a cm_hb); more gain nothing on a MetaDB of a few cores


def backup_folder(run: Run, attempt: int) -> str:
    return posixpath.join(run.env.backup_dir, f"{run.runbook.name}-{run.record.run_id}-a{attempt}")


def backup(run: Run) -> None:
    """mysqldump rm, cm and every cm_hb; non-empty, complete, size and SHA-256, table digests."""
    with long_dump_sessions(run):
        _backup(run)


OB_NOTE = "ob_globals_before.json"  # long_dump_sessions' note: the tenant's timeouts before a raise (a rehearsal's)


@contextmanager
def long_dump_sessions(run: Run, note: Path | None = None) -> Iterator[None]:
    """On OceanBase, the tenant's global query and transaction timeouts raised for the dumps (OMS is
    stopped: no other session of OMS runs), the old values recorded first and set back afterwards,
    whatever happens. Elsewhere nothing.

    ``note``: a run whose record is in memory (the rehearsal) also writes the old values to this file (0600,
    never over a file) before raising them, and removes it once they are set back; what a killed run leaves
    there, the next one sets back first (``set_back_noted``)."""
    set_back_ob_globals(run)  # an earlier attempt that died in between
    if not run.metadb.is_oceanbase():
        yield
        return
    before = run.metadb.ob_globals()
    low = {k: v for k, v in before.items() if v < OB_LONG_US}
    if not low:
        yield
        return
    if note is not None:
        fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"metadb": f"{run.env.metadb.host}:{run.env.metadb.port}", "before": before}, out)
    with run.record.change() as f:  # on disk before anything is raised
        f.ob_globals_before, f.ob_globals_restored = before, False
    run.metadb.set_ob_globals(dict.fromkeys(low, OB_LONG_US))
    run.evidence("OceanBase: global timeouts raised for the dumps (set back afterwards)", {"before": before})
    try:
        yield
    finally:
        set_back_ob_globals(run)
        if note is not None:
            note.unlink()


def set_back_noted(run: Run, notes: Iterable[Path]) -> list[dict[str, int]]:
    """The old timeouts a killed run noted (``long_dump_sessions``'s ``note``) on this MetaDB, set back where they
    are still raised (nobody has set them since), each note removed once done; what was set back."""
    done = []
    here = f"{run.env.metadb.host}:{run.env.metadb.port}"
    for path in notes:
        noted = json.loads(path.read_text())
        if noted.get("metadb") != here:
            continue
        before = {k: int(v) for k, v in noted["before"].items() if k in OB_DUMP_GLOBALS}
        now = run.metadb.ob_globals()
        back = {k: v for k, v in before.items() if now.get(k) == OB_LONG_US}
        if back:
            run.metadb.set_ob_globals(back)
            run.evidence(f"OceanBase: global timeouts a killed run raised, set back ({path})", back)
            done.append(back)
        path.unlink()
    return done


def set_back_ob_globals(run: Run) -> None:
    before = run.facts.ob_globals_before
    if before and not run.facts.ob_globals_restored:
        run.metadb.set_ob_globals(before)
        with run.record.change() as f:
            f.ob_globals_restored = True
        run.evidence("OceanBase: global timeouts set back", run.metadb.ob_globals())


def _backup(run: Run) -> None:
    with run.record.change() as f:
        f.backup_attempt += 1  # never reuse a folder
        f.backups = []
        folder = backup_folder(run, f.backup_attempt)
    bh = run.backup_host
    bh.make_empty_private_dir(folder)

    # The hot upgrade backs up while OMS runs (OD 309 step 3, before step 5 stops anything): the tables change
    # under the dumps, so digests read beside them would not describe them. Each dump is still one consistent
    # snapshot (--single-transaction); no digest is claimed for it.
    rule = rule_of_runbook(run.runbook.name)
    live = rule is not None and rule.kind == "hot"
    if live:
        run.evidence(
            "no per-table digests: OMS runs during the hot upgrade's backup (the page's step 3), so digests read beside "
            "the dumps would not describe them; each dump is one consistent snapshot (--single-transaction)",
            {"databases": [db for _, db in run.env.databases()]},
        )

    def stats_of(db: str) -> dict[str, TableStat]:
        if live:
            return {}
        with AUDIT.in_step(BACKUP.key):
            return {t: TableStat(**s) for t, s in run.metadb.table_digests(db).items()}

    # Row counts and content digests read every table once more: they run beside the dumps (OMS is
    # stopped, nothing writes), in their own MetaDB connection. The dumps run side by side too, one
    # mysqldump per database (each its own consistent snapshot of a database nothing writes to).
    dbs = run.env.databases()
    with ThreadPoolExecutor(max_workers=1) as digests, ThreadPoolExecutor(max_workers=DUMPS_AT_ONCE) as dumps:
        stats = {db: digests.submit(stats_of, db) for _, db in dbs}
        done = [dumps.submit(_backup_one, run, bh, folder, role, db, stats[db]) for role, db in dbs]
        for fut in done:
            fut.result()  # the first failure, with its message
    order = {db: i for i, (_, db) in enumerate(dbs)}
    with run.record.change() as f:  # in the environment's order, whatever order they finished in
        f.backups = sorted(f.backups, key=lambda b: order[b.db])
    verify_backups(run, rehash=False)  # each file was hashed right after it was written


def _backup_one(run: Run, bh: Host, folder: str, role: str, db: str, stats: Future[dict[str, TableStat]]) -> None:
    run.live(f"backup: dumping {db}")
    charset, collation = run.metadb.charset(db)
    dest = posixpath.join(folder, f"{db}.sql")
    with run.watch(f"backup: {dest}", functools.partial(_size_of, bh, dest + ".partial")):
        # size and digest taken right after it was written; moved into place since (never clobbering)
        size, sha256 = run.metadb.dump(bh, folder, db, dest)
    if size == 0:
        raise BackupProblem(
            f"the dump of {db} at {dest} on {bh.label} is empty or missing",
            "check the mysqldump output above and the disk; run again to take a new backup",
        )
    tail = bh.tail(dest, 200)
    if DUMP_MARKER not in tail:
        raise BackupProblem(
            f"the dump of {db} at {dest} has no completion marker ({DUMP_MARKER!r}); "
            f"it is incomplete. Last bytes: {tail[-120:]!r}"
        )
    entry = BackupFile(
        role=role,
        db=db,
        host=bh.spec,
        path=dest,
        size=size,
        sha256=sha256,
        tables=stats.result(),
        charset=charset,
        collation=collation,
        taken=utc_now(),
    )
    with run.record.change() as f:
        f.backups = [*f.backups, entry]  # on disk as soon as each file is verified


def _size_of(host: Host, path: str) -> str:
    size = host.file_size(path)
    return f"{size / 1e6:.1f} MB so far" if size is not None else "starting"


def recheck_backup(bh: Host, b: BackupFile, then: str = "", hashed_as: str | None = None) -> str | None:
    """The file is there with its recorded size and SHA-256 (hashed again, on its host) and complete;
    ``then`` adds what that means where it is checked. ``hashed_as``: the identity (size, mtime,
    inode) the file had when it was last hashed in full; while it still has it, it is not read again.
    Returns the file's identity when it was the same before and after the check, else None."""
    before = bh.file_identity(b.path)
    unchanged = bool(hashed_as) and before == hashed_as
    if not unchanged:
        facts = bh.file_facts(b.path)
        if facts is None:
            raise BackupProblem(f"backup {b.path} on {bh.label} is missing{then}")
        if facts["size"] != b.size or facts["sha256"] != b.sha256:
            raise BackupProblem(
                f"backup {b.path} on {bh.label} changed since it was taken: size {facts['size']} "
                f"(recorded {b.size}), sha256 {facts['sha256']} (recorded {b.sha256}){then}",
                "do not roll back from it; investigate who changed it",
            )
    if DUMP_MARKER not in bh.tail(b.path, 200):
        raise BackupProblem(f"backup {b.path} on {bh.label} has no completion marker{then}")
    if unchanged:
        return before
    return before if before is not None and bh.file_identity(b.path) == before else None


def verify_backups(run: Run, rehash: bool = True, manifest: list[BackupFile] | None = None) -> None:
    """Every backup of the manifest (this run's, unless given) exists with its recorded size and
    SHA-256 and is complete."""
    manifest = run.facts.backups if manifest is None else manifest
    expected = {db for _, db in run.env.databases()}
    have = {b.db for b in manifest}
    if have != expected:
        raise BackupProblem(f"the backup manifest covers {sorted(have)}, expected {sorted(expected)}")
    if rehash:
        seen = {b.path: recheck_backup(run.backup_host, b) for b in manifest}
        with run.record.change() as f:
            f.backups_hashed = {path: ident for path, ident in seen.items() if ident}
    run.evidence("backup manifest", [b.model_dump(exclude={"tables"}) for b in manifest])
    run.evidence(
        "table row counts and content digests at backup time",
        {b.db: {t: s.model_dump() for t, s in b.tables.items()} for b in manifest},
    )


def plan_backup(run: Run) -> list[str]:
    folder = posixpath.join(run.env.backup_dir, f"{run.runbook.name}-<run id>-a1")
    ob = (
        [
            "OceanBase: SET GLOBAL ob_query_timeout, ob_trx_timeout, ob_trx_idle_timeout to one day for the dumps "
            "(the old values recorded first, set back after the dumps)"
        ]
        if run.metadb.is_oceanbase()
        else []
    )
    return ob + [
        f"on {run.env.backup.host}: mysqldump --defaults-extra-file=<0600 file> --single-transaction "
        f"--triggers=false {db} > {folder}/{db}.sql, then its SHA-256 (openssl dgst, else sha256sum)  (side by side; then: not empty, "
        f"{DUMP_MARKER!r}, size; row counts and digests of every table beside)"
        for _, db in run.env.databases()
    ]


BACKUP = Step(
    "backup",
    "Back up rm, cm and every cm_hb",
    backup,
    frozenset({Touches.METADB, Touches.BACKUP}),
    True,
    plan_backup,
    verify_backups,
    taken_once=True,  # the way back: a backup taken after a change would hold the changed metadata
)
