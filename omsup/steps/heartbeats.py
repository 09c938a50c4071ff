"""Pruning the heartbeat table before the backup (doc 003 step 2.2, doc 004 step 3).

"delete from heatbeat_sequence where id < (select max(id) from heatbeat_sequence);" in every
region's cm_hb database: only the newest heartbeat remains.

The document runs it while OMS is stopped, as one statement: its time grows with the years of
heartbeats and all of it is downtime (on OceanBase it also runs into ob_query_timeout, 10 s by
default). The rows below the current max(id) are deleted by it anyway, so the upgrade deletes them
earlier, before T1 while OMS still runs, in short statements over id ranges (``prune_online``, called
by the stop step); at step 3 the document's statement then deletes only the rows written since.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..adapters.metadb import PRUNE_SQL
from ..context import Run
from ..errors import MetaDBProblem
from ..record import OnlinePrune, PruneResult, PurgeWait, utc_now
from ..runbook import Step, Touches

FIRST_RANGE = 10_000  # ids per statement of the online prune, to begin with
MAX_RANGE = 1_000_000
# after the online prune, before T1: the wait until the MetaDB has removed the deleted rows
PURGE_WAIT_S, PURGE_POLL_S = 120, 0.5
SCAN_QUICK_S = 0.1  # reading the pruned id range this fast: the deleted rows are gone (no InnoDB status)
FAST, SLOW = 0.5, 2.0  # seconds: a statement faster doubles the range, slower halves it (OceanBase: 10 s cap)


def prunes_later(run: Run) -> bool:
    """The runbook has the document's prune step (the online prune only ever goes ahead of it)."""
    return any(rs.step.key == PRUNE.key for rs in run.runbook.steps)


def prune_online(run: Run) -> None:
    """Before T1, while OMS runs: every region's heartbeats below max(id) deleted in short statements.

    Done only by runbooks that prune at a later step, once per run (a resumed run whose prune step is
    done skips it); recorded (what, how many, when) and shown in the report.
    """
    if run.plan or run.record.step_done(PRUNE.key) or not prunes_later(run):
        return
    results = dict(run.facts.prune_online or {})
    for region in run.env.regions:
        db = region.cm_hb
        started = utc_now()
        lo, top = run.metadb.heartbeat_ids(db)
        deleted = statements = 0
        size, shown = FIRST_RANGE, time.monotonic()
        while lo is not None and top is not None and lo < top:
            hi = min(lo + size, top)
            t0 = time.monotonic()
            deleted += run.metadb.delete_heartbeats(db, lo, hi)
            took = time.monotonic() - t0
            statements += 1
            lo = hi
            size = min(size * 2, MAX_RANGE) if took < FAST else max(size // 2, 1000) if took > SLOW else size
            if time.monotonic() - shown > 5:
                shown = time.monotonic()
                run.live(f"{db}: {deleted} old heartbeats deleted before T1 (up to id {lo} of {top})")
        results[db] = OnlinePrune(
            below_id=top, deleted=deleted, statements=statements, started=started, ended=utc_now()
        )
    with run.record.change() as f:
        f.prune_online = results
    run.evidence(
        "heartbeats deleted before T1, while OMS ran (the document's DELETE follows at step 3)",
        {db: r.model_dump() for db, r in results.items()},
    )
    below = {db: r.below_id for db, r in results.items() if r.deleted and r.below_id is not None}
    if below and run.facts.prune_purge is None:
        wait_for_purge(run, below)


Check = Callable[[], tuple[bool, dict[str, Any]]]


def wait_for_purge(run: Run, below: dict[str, int]) -> None:
    """The MetaDB removes deleted rows from its indexes later (InnoDB in its purge, OceanBase in its
    compactions); until then every scan of the table (the document's DELETE at step 3, its row counts)
    still steps over them, in the outage. So, still before T1, wait at most PURGE_WAIT_S until they are
    gone: on InnoDB until every transaction up to the prune is purged (SHOW ENGINE INNODB STATUS);
    elsewhere, or where that is not readable, until reading the pruned id range is quick again."""
    check, method = _innodb_purged(run), "InnoDB purge (SHOW ENGINE INNODB STATUS)"
    if check is None:
        check, method = _range_quick(run, below), f"the pruned id ranges read in under {SCAN_QUICK_S} s"
    t0 = shown = time.monotonic()
    done, seen = check()
    while not done and time.monotonic() - t0 < PURGE_WAIT_S:
        time.sleep(PURGE_POLL_S)
        done, seen = check()
        if time.monotonic() - shown > 5:
            shown = time.monotonic()
            run.live(f"waiting until the MetaDB has removed the deleted heartbeats ({method}): {seen}")
    wait = PurgeWait(method=method, seen=seen, seconds=round(time.monotonic() - t0, 2), settled=done)
    with run.record.change() as f:
        f.prune_purge = wait
    run.evidence(
        "the MetaDB removed the deleted heartbeats before T1"
        if done
        else f"the MetaDB had not removed the deleted heartbeats after {PURGE_WAIT_S} s; going on (the "
        "document's DELETE at step 3 may take longer)",
        wait.model_dump(),
    )


def _innodb_purged(run: Run) -> Check | None:
    first = run.metadb.innodb_purge()
    if first is None:
        return None
    counter = first[0]  # right after the prune's last DELETE

    def check() -> tuple[bool, dict[str, Any]]:
        now = run.metadb.innodb_purge()  # None: no longer readable; the wait ends at its limit
        purged, history = (now[1], now[2]) if now else (-1, -1)
        return purged >= counter, {"trx_counter": counter, "purged_below": purged, "history_length": history}

    return check


def _range_quick(run: Run, below: dict[str, int]) -> Check:
    def check() -> tuple[bool, dict[str, Any]]:
        took: dict[str, float | str] = {}
        for db, top in below.items():
            t0 = time.monotonic()
            try:
                run.metadb.count_heartbeats_below(db, top)
                took[db] = round(time.monotonic() - t0, 3)
            except MetaDBProblem as e:  # e.g. OceanBase's ob_query_timeout: not quick; the wait decides
                took[db] = f"failed after {time.monotonic() - t0:.1f} s: {e.message[:200]}"
        return all(isinstance(t, float) and t < SCAN_QUICK_S for t in took.values()), {"read_s": took}

    return check


def prune(run: Run) -> None:
    results = {}
    for region in run.env.regions:
        db = region.cm_hb
        before = run.metadb.heartbeat_counts(db)
        deleted = run.metadb.prune_heartbeats(db)
        after = run.metadb.heartbeat_counts(db)
        results[db] = PruneResult(rows_before=before[0], max_id=before[1], deleted=deleted, rows_after=after[0])
        if before[0]:
            assert after[0] == 1 and after[1] == before[1] and after[2] == before[1], (
                f"{db}.heatbeat_sequence: expected only the newest row (id {before[1]}) to remain, "
                f"saw {after[0]} rows with ids {after[2]}..{after[1]}"
            )
    with run.record.change() as f:
        f.prune = results
    run.evidence("heartbeats pruned (the document's DELETE)", {db: r.model_dump() for db, r in results.items()})
    if run.facts.prune_online:
        run.evidence(
            "deleted earlier, before T1 while OMS ran",
            {db: r.model_dump() for db, r in run.facts.prune_online.items()},
        )


def plan_prune(run: Run) -> list[str]:
    return [f"[{r.cm_hb}] {PRUNE_SQL}" for r in run.env.regions]


PRUNE = Step("prune_heartbeats", "Prune heartbeats", prune, frozenset({Touches.METADB}), True, plan_prune)
