"""Pruning the heartbeat table before the backup (doc 003 step 2.2, doc 004 step 3).

"delete from heatbeat_sequence where id < (select max(id) from heatbeat_sequence);" in every
region's cm_hb database: only the newest heartbeat remains.
"""

from __future__ import annotations

from ..adapters.metadb import PRUNE_SQL
from ..context import Run
from ..record import PruneResult
from ..runbook import Step, Touches


def prune(run: Run) -> None:
    results = {}
    for region in run.env.regions:
        db = region.cm_hb
        before = run.metadb.query("SELECT COUNT(*), MAX(id) FROM heatbeat_sequence", db=db)[0]
        deleted = run.metadb.prune_heartbeats(db)
        after = run.metadb.query("SELECT COUNT(*), MAX(id), MIN(id) FROM heatbeat_sequence", db=db)[0]
        results[db] = PruneResult(rows_before=before[0], max_id=before[1], deleted=deleted, rows_after=after[0])
        if before[0]:
            assert after[0] == 1 and after[1] == before[1] and after[2] == before[1], (
                f"{db}.heatbeat_sequence: expected only the newest row (id {before[1]}) to remain, "
                f"saw {after[0]} rows with ids {after[2]}..{after[1]}"
            )
    with run.record.change() as f:
        f.prune = results
    run.evidence("heartbeats pruned", {db: r.model_dump() for db, r in results.items()})


def plan_prune(run: Run) -> list[str]:
    return [f"[{r.cm_hb}] {PRUNE_SQL}" for r in run.env.regions]


PRUNE = Step("prune_heartbeats", "Prune heartbeats", prune, frozenset({Touches.METADB}), True, plan_prune)
