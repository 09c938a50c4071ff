"""The OMS containers: reading `docker inspect`, and stopping them.

doc 003/004: `sudo docker stop ${CONTAINER_NAME}` on every node, recording T1 (or T3 in a
rollback) first. Starting is in start.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem, PreconditionRefused
from ..record import UpgradeRef, utc_now
from ..runbook import Step, Touches, omsup_command
from .backup import BACKUP
from .connectors import CONNECTOR_DBTYPE
from .heartbeats import PURGE_WAIT_S, prune_online, prunes_later
from .image import wait_early_load


# -- reading docker inspect --------------------------------------------------------------------
def _strings_at(attrs: Any, section: str, key: str) -> list[str]:
    """A list of strings from `docker inspect` (HostConfig.Binds, Config.Env); anything else is refused."""
    part = attrs.get(section) if isinstance(attrs, dict) else None
    value = (part.get(key) if isinstance(part, dict) else None) or []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ContainerProblem(
            f"docker inspect answered {section}.{key} = {str(value)[:200]!r}, not a list of strings",
            "check the Docker engine's version and the container; nothing was changed",
        )
    return list(value)


def binds_of(attrs: dict[str, Any]) -> list[str]:
    return _strings_at(attrs, "HostConfig", "Binds")


def env_of(attrs: dict[str, Any]) -> dict[str, str]:
    out = {}
    for item in _strings_at(attrs, "Config", "Env"):
        k, _, v = item.partition("=")
        out[k] = v
    return out


def last_logs(run: Run, node: Node) -> str:
    """The container's last log lines, for a message that says why something gave up."""
    return run.engines[node.name].logs(run.env.container, 15)


def container_state(run: Run, node: Node) -> dict[str, Any]:
    attrs = run.engines[node.name].inspect(run.env.container) or {}
    return dict(attrs.get("State") or {})


def require_running(run: Run, node: Node) -> None:
    state = container_state(run, node)
    if not state.get("Running"):
        raise ContainerProblem(
            f"node {node.name}: container {run.env.container} is not running (status {state.get('Status')}, "
            f"exit code {state.get('ExitCode')})\n  last log lines:\n{last_logs(run, node)}",
            "fix the cause shown in the log, then run the runbook again: it resumes and starts the container",
        )


def stop_containers(
    run: Run,
    record_time: Callable[[str], None],
    container_id_of: Callable[[Node], str | None],
    what: str,
    gone_ok: bool,
) -> None:
    """doc: sudo docker stop ${CONTAINER_NAME} on every node, recording the time first (T1 or T3).

    ``container_id_of(node)`` names the container by id (whatever its name now), or None when
    the node has none to stop.
    """
    record_time(utc_now())  # recorded before the stops: the gap it measures is never short

    def stop(n: Node) -> str:
        cid = container_id_of(n)
        if cid is None:
            return "no container to stop on this node"
        attrs = run.engines[n.name].inspect(cid)
        if attrs is None:
            if gone_ok:
                return "the container is gone"
            raise ContainerProblem(f"node {n.name}: the {what} container {cid[:12]} is gone")
        if attrs["State"].get("Running"):
            run.engines[n.name].stop(cid)
        return "stopped"

    run.each_node(stop, what=f"docker stop ({what} container)")


# == Stop the old containers, record T1 ==========================================================
def stop_old(run: Run) -> None:
    if run.facts.t1 is None:  # before T1 (not downtime): the old heartbeats, while the image loads
        prune_online(run)
    wait_early_load(run)  # not downtime then; and a failed load stops the run before anything is stopped

    def t1(now: str) -> None:
        if run.facts.t1 is None:
            with run.record.change() as f:
                f.t1 = now

    stop_containers(run, t1, lambda n: run.node_facts(n.name).container_id, "old", gone_ok=False)
    verify_stopped(run)
    run.evidence("T1", run.facts.t1 or "")


def verify_stopped(run: Run) -> None:
    """The old containers are stopped. One started again since it was last seen (by hand, or by its
    engine's restart policy when the engine restarted) ran OMS: before this run's backups that only
    makes T1 early (the refetch window grows: safe) and its new start is recorded; after them the
    backups miss what OMS wrote meanwhile, and the run is not to be resumed."""

    def check(n: Node) -> str:
        nf = run.node_facts(n.name)
        attrs = run.engines[n.name].inspect(nf.container_id)
        assert attrs is not None, f"node {n.name}: the old container {nf.container_id[:12]} is gone"
        started, running = attrs["State"].get("StartedAt"), attrs["State"].get("Running")
        if nf.started_at and started != nf.started_at and run.record.step_done(BACKUP.key):
            raise ContainerProblem(
                f"node {n.name}: the old container {nf.container_id[:12]} was started again at {started}, after "
                f"this run's backups (it had started at {nf.started_at}; T1 {run.facts.t1}): OMS ran since, so "
                "the backups no longer hold the metadata it is to be upgraded from",
                f"do not resume this run: call it off ({omsup_command('abandon', run.runbook.name, '--env', run.env.source)} "
                "--reason ...), start the old containers again if OMS is to run meanwhile, then run the "
                "upgrade again: a new run takes new backups",
                resumable=False,
            )
        assert not running, f"node {n.name}: the old container still runs"
        if started != nf.started_at:  # stopped again before the backups: they are taken after this start
            again[n.name] = {"started before": nf.started_at, "started again at": started, "T1": run.facts.t1}
            with run.record.change() as f:
                f.nodes[n.name].started_at = started
        return str(attrs["State"].get("Status"))

    again: dict[str, dict[str, str | None]] = {}
    run.each_node(check, what="old container not running")
    if again:
        run.evidence("old containers started again before the backups (T1 stays as recorded)", again)


def plan_stop_old(run: Run) -> list[str]:
    early = [
        f"before T1, while OMS runs: [{r.cm_hb}] delete from heatbeat_sequence where id >= <lo> and id < <hi>, "
        "over the ids below max(id) in short statements (the document's DELETE at its step then deletes only "
        "the rows written since)"
        for r in run.env.regions
        if prunes_later(run)
    ]
    if early:
        early.append(
            f"then, still before T1, at most {PURGE_WAIT_S} s: wait until the MetaDB has removed those rows (InnoDB: "
            "SHOW ENGINE INNODB STATUS shows them purged; else: SELECT COUNT(*) ... WHERE id < <max(id)> is quick), "
            "so that the document's DELETE does not step over them in the outage"
        )
    return early + [f"{n.name}: docker stop {run.env.container}  (record T1 before)" for n in run.env.nodes]


STOP_OLD = Step(
    "stop_old",
    "Stop the old containers, record T1",
    stop_old,
    frozenset({Touches.ENGINES}),
    True,
    plan_stop_old,
    verify_stopped,
    supersedes=(CONNECTOR_DBTYPE,),
    taken_once=True,  # T1: the refetch window starts there
)


# == Stop the new containers, record T3 (rollback) ===============================================
def upgrade_ref(run: Run) -> UpgradeRef:
    """The upgrade's facts, as recorded by this rollback's preflight."""
    up = run.facts.upgrade
    if up is None:
        raise PreconditionRefused(
            "this rollback's ledger has no copy of the upgrade's record", "run the rollback from its preflight"
        )
    return up


def new_container_of(run: Run, n: Node) -> str | None:
    nf = upgrade_ref(run).nodes.get(n.name)
    return nf.new_container_id if nf else None


def stop_new(run: Run) -> None:
    def t3(now: str) -> None:
        if run.facts.t3 is None:
            with run.record.change() as f:
                f.t3 = now

    stop_containers(run, t3, lambda n: new_container_of(run, n), "new", gone_ok=True)
    verify_new_stopped(run)
    run.evidence("T3", run.facts.t3 or "")


def verify_new_stopped(run: Run) -> None:
    def check(n: Node) -> None:
        new_id = new_container_of(run, n)
        attrs = run.engines[n.name].inspect(new_id) if new_id else None
        assert attrs is None or not attrs["State"].get("Running"), f"node {n.name}: the new container still runs"
        old = run.engines[n.name].inspect(upgrade_ref(run).nodes[n.name].container_id)
        assert old is not None and not old["State"].get("Running"), f"node {n.name}: the old container is not stopped"

    run.each_node(check, what="no OMS container runs")


def plan_stop_new(run: Run) -> list[str]:
    return [f"{n.name}: docker stop {run.env.container}  (the new container; record T3 before)" for n in run.env.nodes]


STOP_NEW = Step(
    "stop_new",
    "Stop the new containers, record T3",
    stop_new,
    frozenset({Touches.ENGINES}),
    True,
    plan_stop_new,
    verify_new_stopped,
    taken_once=True,  # T3
)
