"""Rules about past runs, read from their records alone (issue 28, point 4): which steps of a run changed the
deployment, after which of them there is no way back but forward (or the rollback), which upgrade a rollback
undoes, and whether a rollback is half done. The executor, ``omsup status``, ``omsup abandon`` and the preflights
ask here; nothing else decides these.

Each step's entry in a record says what the step is (``changes``, ``no_way_back``), written when it began, so a
record is read the same way whatever steps a later omsup has. Ledgers written before 0.4.0 do not say: their
steps are read by ``LEDGER_0_3``, the classification every step had in omsup 0.3.0 (a fixed fact of that release,
never edited), and a step it does not know counts as a change after which there is no way back (the safe reading).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .errors import NothingToDo, PreconditionRefused
from .record import Record, RunStatus, StepEntry

# omsup 0.3.0's steps: key -> (changes, no_way_back). Only for ledgers whose entries do not say.
LEDGER_0_3: dict[str, tuple[bool, bool]] = {
    "after_upgrade": (False, False),
    "backup": (True, False),
    "connector_dbtype": (True, False),
    "connector_survey": (False, False),
    "disable_ha": (True, False),
    "enable_ha": (True, False),
    "hot_dump": (False, False),
    "hot_rollback": (True, True),
    "hot_rollback_preflight": (False, False),
    "hot_rollback_verify": (True, False),
    "hot_scripts": (False, False),
    "hot_update": (True, True),
    "hot_verify": (False, False),
    "init_metadata": (True, True),
    "load_image": (False, False),
    "preflight": (False, False),
    "probe": (False, False),
    "projects_running_again": (True, False),
    "prune_heartbeats": (True, False),
    "restart_old": (True, False),
    "restore": (True, True),
    "rollback_enable_ha": (True, False),
    "rollback_preflight": (False, False),
    "start_new": (True, True),
    "stop_new": (True, False),
    "stop_old": (True, False),
    "verify": (False, False),
    "verify_restore": (False, False),
}


def kind(key: str, entry: StepEntry) -> tuple[bool, bool]:
    """(changes, no_way_back) of the step ``key`` as its run recorded it."""
    if entry.changes is not None and entry.no_way_back is not None:
        return entry.changes, entry.no_way_back
    return LEDGER_0_3.get(key, (True, True))


def changes_begun(rec: Record) -> list[str]:
    """The steps that change the deployment and began in the run ``rec`` recorded (any attempt)."""
    return [key for key, e in rec.data.steps.items() if kind(key, e)[0]]


def no_way_back_begun(rec: Record) -> list[str]:
    """The steps the run ``rec`` began after which only finishing it (or, for an upgrade, its rollback) goes back:
    new containers may run on migrated metadata, or a database was dropped. Such a run is never abandoned."""
    return [key for key, e in rec.data.steps.items() if kind(key, e)[1]]


def undoable_upgrade(state_dir: str | Path, name: str, env: str) -> Record:
    """The run of the upgrade runbook ``name`` a rollback on environment ``env`` undoes (``undoable_among``)."""
    return undoable_among(Record.runs(state_dir, name, env), name, env, state_dir)


def undoable_among(found: list[Record], name: str, env: str, state_dir: str | Path) -> Record:
    """Among the runs of ``name`` on ``env`` (oldest first), the one a rollback undoes: the newest that changed
    something and was not called off (omsup abandon). A run that stopped before any change (an upgrade run again by
    mistake after it completed, refused at its preflight) changed nothing, so it hides nothing.

    Raises:
        PreconditionRefused: no run of it is recorded there.
        NothingToDo: none of its runs changed anything.
    """
    every = list(reversed(found))
    runs = [r for r in every if r.data.status != RunStatus.ABANDONED]
    if not runs:
        raise PreconditionRefused(
            f"no run ledger of {name} for environment {env} under {state_dir}"
            + (f" but runs called off (omsup abandon): {', '.join(r.run_id for r in every)}" if every else ""),
            "a rollback undoes a recorded upgrade; point state_dir at the folder the upgrade used"
            + ("; a run called off left no new containers and no migrated metadata to roll back" if every else ""),
        )
    changed = [r for r in runs if changes_begun(r)]
    if not changed:
        raise NothingToDo(
            f"no run of {name} on environment {env} changed anything: "
            f"{', '.join(r.run_id for r in runs)} stopped before their first change",
            "nothing to roll back; the deployment runs what it ran before",
        )
    return changed[0]


def half_done_rollback(runs: Iterable[Record]) -> tuple[Record, list[str]] | None:
    """Among ``runs`` (already read), the rollback run that is unfinished and began a change, with the changing
    steps it began."""
    for rec in runs:
        if rec.data.status != RunStatus.RUNNING or rec.facts.upgrade is None:
            continue
        began = changes_begun(rec)
        if began:
            return rec, began
    return None


def rollback_under_way(state_dir: str | Path, env: str) -> tuple[Record, list[str]] | None:
    """``half_done_rollback`` over every run on environment ``env`` recorded under ``state_dir``."""
    return half_done_rollback(rec for name in Record.runbooks(state_dir) for rec in Record.runs(state_dir, name, env))
