"""The preflights: everything checked, and recorded, before anything changes.

Upgrade: every node reachable with its old container running as documented; one version, and
the document allows the upgrade from it; the installation package; the MetaDB and room for the
backups; no project in a state the documents forbid. Rollback: the upgrade's record, every
backup verified, every old container still there as recorded.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import history
from ..container_spec import REQUIRED_TARGETS, bind_target
from ..context import Run
from ..envfile import Node
from ..errors import NothingToDo, PreconditionRefused
from ..record import NodeFacts, Record, RunStatus, UpgradeRef, Versions, parse_utc
from ..runbook import Step, Touches, command, omsup_command
from ..versions import Version, VersionError, check_upgrade, rule_for
from . import connectors, metadb_checks
from .backup import BACKUP, verify_backups
from .containers import binds_of, env_of
from .hot import hot_upgraded_version
from .image import check_package
from .projects import list_projects
from .readings import image_version
from .restore import upgrade_record

SPACE_MARGIN = 1.5  # room for 1.5 x the estimated dump sizes, plus 64 MiB
SPACE_EXTRA = 64 * 1024 * 1024


def reachable(run: Run, node: Node) -> None:
    run.hosts[node.name].ping()
    run.engines[node.name].ping()


def inspect_old(run: Run, node: Node) -> NodeFacts:
    reachable(run, node)
    attrs = run.engines[node.name].inspect(run.env.container)
    if attrs is None:
        raise PreconditionRefused(
            f"node {node.name}: no container named {run.env.container}",
            "check 'container' in the environment file (docker ps -a on the node)",
        )
    state = attrs.get("State") or {}
    if not state.get("Running"):
        raise PreconditionRefused(
            f"node {node.name}: container {run.env.container} is not running "
            f"(status {state.get('Status')}); the procedure starts from a running deployment"
        )
    binds = binds_of(attrs)
    missing = [t for t in REQUIRED_TARGETS if t not in {bind_target(b) for b in binds}]
    if missing:
        raise PreconditionRefused(
            f"node {node.name}: container {run.env.container} lacks the documented mounts "
            f"{', '.join(missing)}; binds seen: {binds}"
        )
    env = env_of(attrs)
    if env.get("OMS_HOST_IP") != node.ip:
        raise PreconditionRefused(
            f"node {node.name}: the container's OMS_HOST_IP is {env.get('OMS_HOST_IP')!r}, "
            f"the environment file says ip {node.ip}",
            "correct the node's ip in the environment file",
        )
    version = image_version(run, node, attrs)
    cfg = metadb_checks.read_config(run, node, binds)
    metadb_checks.check_identity(run, node, cfg)  # the MetaDB of the environment file is the one it uses
    console_port, cm_port = run.remember_config(node.name, cfg)
    if run.env.console.port is not None and run.env.console.port != console_port:
        run.warn(
            f"node {node.name}: the environment file's console.port is {run.env.console.port}, its config.yaml's "
            f"nginx_server_port {console_port}: the runbooks use {run.env.console.port} (leave console.port out "
            "to use config.yaml's)"
        )
    # the image's own defaults are not carried over: only what the operator set on the container
    image_env = env_of({"Config": {"Env": run.engines[node.name].image_env(attrs["Image"])}})
    user_env = {k: v for k, v in env.items() if image_env.get(k) != v and k not in ("OMS_HOST_IP", "IS_UPGRADE")}
    return NodeFacts(
        container_id=attrs["Id"],
        name=run.env.container,
        image=attrs["Config"]["Image"],
        image_id=attrs["Image"],
        binds=binds,
        env=sorted(f"{k}={v}" for k, v in env.items()),
        user_env=user_env,
        version=str(version) if version else None,
        cm_nodes=sorted(str(x) for x in (cfg.get("cm_nodes") or [])),
        started_at=attrs["State"].get("StartedAt"),
        console_port=console_port,
        cm_port=cm_port,
    )


def _source_version(run: Run, old: dict[str, NodeFacts]) -> tuple[Version, list[str] | None]:
    versions = {n: Version.parse(f.version) for n, f in old.items() if f.version}
    if len(set(versions.values())) > 1:
        raise PreconditionRefused(
            f"the nodes run different versions: {json.dumps({k: str(v) for k, v in versions.items()})}"
        )
    rm = run.env.metadb.rm
    rows = run.metadb.oms_versions(rm)
    image_v = next(iter(versions.values()), None)
    # after a hot upgrade the image a container was started from is the release before: what it runs is what
    # that upgrade's ledger says (OD 309: the files are replaced in the running container)
    hot = hot_upgraded_version(run.env.state_dir, run.env.name, {n: f.container_id for n, f in old.items()})
    if hot is not None and image_v is not None and hot != image_v:
        run.warn(f"the containers were started from {image_v}'s image and hot upgraded to {hot} (the run ledgers say)")
        image_v = hot
    meta_v = max((Version.parse(v) for v in rows), default=None) if rows else None
    # What runs is the image; oms_version is evidence (no public source says docker_init.sh writes the target
    # there: a release that leaves it lags the image). Metadata newer than the image that runs is no product's
    # behaviour: a half-done upgrade, or a rollback without its restore.
    if meta_v and image_v and meta_v > image_v:
        raise PreconditionRefused(
            f"oms_version in {rm} says {meta_v}, newer than the running image's {image_v}",
            "a previous upgrade may be half done, or rolled back without its restore; investigate before upgrading",
        )
    if meta_v and image_v and meta_v < image_v:
        run.warn(
            f"oms_version in {rm} says {meta_v}, the running image {image_v}: taken as {image_v} (what runs); a "
            "release whose docker_init.sh does not write oms_version leaves it behind"
        )
    source = image_v or meta_v
    if source is None:
        raise PreconditionRefused("cannot tell the running version: no oms_version row and no version in the image tag")
    if source == run.runbook.target:
        name, env = run.runbook.name, run.env.name
        done = [r for r in Record.runs(run.env.state_dir, name, env) if r.data.status == RunStatus.COMPLETE]
        raise NothingToDo(
            f"the deployment already runs {source}, the target of {name}"
            + (f": run {done[-1].run_id} completed it at {done[-1].data.finished}" if done else ""),
            "nothing to upgrade; to go back, run the rollback of this upgrade"
            + (f": {command(back, run.env.source)}" if (back := rule_for(source).rollback) else ""),
        )
    if run.env.version is not None and run.env.version != source:
        raise PreconditionRefused(
            f"the environment file expects {run.env.version}, the deployment runs {source}",
            "correct 'version' in the environment file, or check you are on the right deployment",
        )
    return source, rows


def _backup_room(run: Run) -> dict[str, Any]:
    sizes = {db: run.metadb.estimate_bytes(db) for _, db in run.env.databases()}
    need = int(sum(sizes.values()) * SPACE_MARGIN) + SPACE_EXTRA
    bh, folder = run.backup_host, run.env.backup.dir
    if not bh.writable_dir(folder):
        raise PreconditionRefused(
            f"backup folder {folder} on {bh.label} does not exist or is not writable",
            f"create it (mkdir -p {folder}; chmod 700 {folder}) on {bh.label}",
        )
    free = bh.free_bytes(folder)
    if free < need:
        raise PreconditionRefused(
            f"backup folder {folder} on {bh.label} has {free} bytes free; the dumps need about "
            f"{need} (estimated dump sizes {sizes} x {SPACE_MARGIN} + 64 MiB)",
            "free space there or point backup.dir elsewhere",
        )
    return {"folder": folder, "host": bh.label, "free": free, "needed": need, "sizes": sizes}


def metadb_preconditions(run: Run, oms: Version, dump: bool, dump_heads: list[str] | None = None) -> None:
    """Engine and version, clocks, grants (what a backup, the upgrade and a restore need), the client
    tools: each refuses with what was seen and what to do, before anything changes."""
    found: dict[str, Any] = {
        "engine": metadb_checks.check_engine(run, oms),
        "clocks": metadb_checks.check_clocks(run),
        "grants": metadb_checks.check_grants(
            run, metadb_checks.UPGRADE_NEEDS + metadb_checks.RESTORE_NEEDS if dump else metadb_checks.RESTORE_NEEDS
        ),
        "clients": metadb_checks.check_clients(run, dump=dump, dump_heads=dump_heads),
    }
    if dump:
        found["oceanbase_dump_timeouts"] = metadb_checks.check_ob_timeouts(run, found["grants"]["grants"])
    run.evidence("the MetaDB's preconditions", found)
    with run.record.change() as f:
        f.metadb_engine = found["engine"]


def no_rollback_under_way(run: Run) -> None:
    """An upgrade neither starts nor resumes while a rollback on this environment is half done: it
    would start from a half-rolled-back deployment (new containers stopped, databases dropped)."""
    half = history.rollback_under_way(run.env.state_dir, run.env.name)
    if half is not None:
        rec, began = half
        up = rec.facts.upgrade
        assert up is not None
        name = rec.data.runbook
        raise PreconditionRefused(
            f"rollback run {rec.run_id} ({name}) of upgrade run {up.run_id} is unfinished (it began "
            f"{', '.join(began)}): an upgrade now would start from a half rolled-back deployment",
            f"finish the rollback first: run {name} again (it resumes)",
        )


def follow_rehearsal(run: Run, old_images: dict[str, str], packages_on: str | None) -> None:
    """--rehearsal FILE (issue 29): this run follows a rehearsal only if it rehearsed what is about to run: this
    runbook, this environment, the image the old containers run, the installation package (its SHA-256 on node 1),
    the MetaDB's engine and version, and a clone no older than rehearsal.max_age_hours. Refused before any change
    otherwise. What it observed is expected later where the documents are silent (a difference is a warning)."""
    path = run.rehearsal_file
    if path is None:
        return
    try:
        data = json.loads(Path(path).read_text())
        ident = data["identities"]
        at = parse_utc(data["at"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PreconditionRefused(
            f"--rehearsal {path}: not a rehearsal.json this omsup can read ({type(e).__name__}: {e})",
            "give the rehearsal.json of a rehearsal's run folder (runbooks/rehearse_*)",
        ) from None
    problems = []
    name = run.runbook.name
    if name not in (data.get("upgrade_runbook"), data.get("rollback_runbook")):
        problems.append(f"it rehearsed {data.get('upgrade_runbook')} and {data.get('rollback_runbook')}, not {name}")
    if data.get("environment") != run.env.name:
        problems.append(f"it rehearsed environment {data.get('environment')!r}, this is {run.env.name!r}")
    for node, image in sorted(old_images.items()):
        if image != ident.get("old_image_id"):
            problems.append(
                f"node {node}'s old container runs image {image[:19]}, it rehearsed {str(ident.get('old_image_id'))[:19]}"
            )
    if packages_on is not None:
        first = run.env.nodes[0]
        seen = run.hosts[first.name].file_facts(packages_on) or {}
        if seen.get("sha256") != ident.get("package_sha256"):
            problems.append(
                f"the installation package {packages_on} on {first.name} has SHA-256 {str(seen.get('sha256'))[:16]}..., "
                f"it rehearsed {str(ident.get('package_sha256'))[:16]}..."
            )
    server = run.metadb.server()
    if server["version"] != (ident.get("metadb") or {}).get("version"):
        problems.append(
            f"the MetaDB is {server['version']}, it rehearsed on {(ident.get('metadb') or {}).get('version')}"
        )
    age_h = (datetime.now(UTC) - at).total_seconds() / 3600
    if age_h > run.env.rehearsal.max_age_hours:
        problems.append(
            f"it is {age_h:.0f} h old (rehearsal.max_age_hours: {run.env.rehearsal.max_age_hours}): its clone of the "
            "metadata is too old to stand for today's"
        )
    if problems:
        raise PreconditionRefused(
            f"--rehearsal {path} did not rehearse what is about to run: " + "; ".join(problems),
            "rehearse again (runbooks/rehearse_*) with what production runs now, or run without --rehearsal",
        )
    followed = {
        "rehearsed": True,
        "file": str(Path(path).resolve()),
        "rehearsal": data.get("rehearsal"),
        "at": data.get("at"),
        "outage_seconds": data.get("outage_seconds"),
        "observed": data.get("observed"),
    }
    with run.record.change() as f:
        f.rehearsed_with = followed
    run.evidence("the rehearsal this run follows", followed)
    run.live(
        f"preflight: follows rehearsal {data.get('rehearsal')} of {data.get('at')} (outage {data.get('outage_seconds')} s)"
    )


def preflight(run: Run) -> None:
    """Changes nothing: reachability, versions, package, MetaDB, backup room, projects; records the old containers."""
    target = run.runbook.target
    no_rollback_under_way(run)
    if run.runbook.single_node and len(run.env.nodes) != 1:
        raise PreconditionRefused(
            f"{run.runbook.name} is the single-node procedure (doc {run.runbook.doc}); the "
            f"environment has {len(run.env.nodes)} nodes",
            "use the multi-node runbook",
        )
    run.live("preflight: inspecting nodes")
    old = run.each_node(lambda n: inspect_old(run, n), what="old container inspected")
    run.metadb.ping()
    missing = [name for _, name in run.env.databases() if name not in run.metadb.existing_databases()]
    if missing:
        raise PreconditionRefused(
            f"the MetaDB {run.metadb.label} lacks {', '.join(missing)}",
            "check metadb.rm, metadb.cm and each region's cm_hb in the environment file",
        )
    source, rows = _source_version(run, old)
    try:
        check_upgrade(source, target)
    except VersionError as e:
        raise PreconditionRefused(str(e), "follow the documented upgrade path (omsup path FROM TO)") from e
    metadb_preconditions(run, target, dump=True)
    packages = run.each_node(lambda n: check_package(run, n, target), what="installation package checked")
    follow_rehearsal(run, {k: v.image_id for k, v in old.items()}, packages_on=run.env.packages.get(target))
    room = _backup_room(run)
    projects = list_projects(run, source)
    run.evidence("projects", projects)
    bad = [p for p in projects if p.forbidden]
    if bad:
        lines = "; ".join(f"{p.name} ({p.id}): {p.forbidden}" for p in bad)
        if rule_for(target).projects_rule == "required":  # doc 000/001: "make sure"
            raise PreconditionRefused(
                f"projects in a state the documents forbid for an upgrade to {target}: {lines}",
                f"wait until they are real-time and their forward switchover is done (doc {rule_for(target).doc})",
            )
        run.warn(  # the document for this target does not require it (the zh 4.2.9 page only recommends it)
            f"projects not real-time or whose forward switchover is not done: {lines}; the document for {target} "
            "does not require it (the zh 4.2.9 page recommends it): the upgrade goes on, and they resume as doc 004's "
            "HA table says"
        )
    ha = run.metadb.ha_config(run.env.metadb.rm)
    with run.record.change() as f:  # what the Connector survey needs to know first
        f.versions = Versions(source=str(source), target=str(target), oms_version_before=rows)
    survey = None
    if run.runbook.has(connectors.CONNECTOR_DBTYPE):  # docs 000/001: check dbType first
        survey = connectors.survey(run)
        run.evidence(
            "Connectors lacking dbType/db_type that need it (fixed in the next step)",
            [r for r in survey.connectors if r.needs_fix],
        )
    with run.record.change() as f:
        f.nodes, f.packages, f.projects_before, f.ha_before = old, packages, projects, ha
        f.sizes, f.connectors_before = room["sizes"], survey
    run.evidence("old containers (binds, environment, image)", {k: v.model_dump() for k, v in old.items()})
    run.evidence("versions", f.versions)
    run.evidence("backup room", room)


def verify_preflight(run: Run) -> None:
    """On resume: the record holds what the preflight learned (each later step checks what it uses),
    and no rollback is half done meanwhile."""
    no_rollback_under_way(run)
    for n in run.env.nodes:
        run.node_facts(n.name)
    if run.facts.versions is None or run.facts.ha_before is None or len(run.facts.packages) != len(run.env.nodes):
        raise PreconditionRefused(
            f"the run ledger {run.record.path} lacks what the preflight records",
            f"call this run off ({omsup_command('abandon', run.runbook.name, '--env', run.env.source)} --reason ...) and "
            "start the runbook anew",
        )


PREFLIGHT = Step(
    "preflight",
    "Preflight (changes nothing)",
    preflight,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.METADB, Touches.CONSOLE, Touches.BACKUP}),
    False,
    None,
    verify_preflight,
    taken_once=True,  # the old containers (binds, image, environment), the version before, ha.config before
)


# == the rollback's preflight ======================================================================
def _upgraded(run: Run, up: Record) -> dict[str, Any]:
    """The deployment is in the state the upgrade left: on some node the new container holds the
    container's name, or oms_version names the target. Otherwise there is nothing to roll back (and
    a second rollback would throw away everything written since the first)."""
    f = up.facts
    holders = {}
    for n in run.env.nodes:
        attrs = run.engines[n.name].inspect(run.env.container)
        nf = f.nodes.get(n.name)
        holders[n.name] = (
            "new"
            if attrs is not None and nf is not None and attrs["Id"] == nf.new_container_id
            else "old"
            if attrs is not None and nf is not None and attrs["Id"] == nf.container_id
            else "other"
            if attrs is not None
            else "none"
        )
    rows = run.metadb.oms_versions(run.env.metadb.rm) or []
    target = Version.parse(f.versions.target) if f.versions else run.runbook.target
    at_target = any(Version.parse(v) == target for v in rows)
    if "new" not in holders.values() and not at_target:
        raise NothingToDo(
            f"the deployment is not in the state upgrade run {up.run_id} left: no node runs its new container "
            f"({holders}) and oms_version is {rows}, not {target}; a rollback now would drop and restore the "
            "metadata from the pre-upgrade backups and lose everything written since",
            "if the upgrade stopped before its new containers started, restart the old containers (docker start) "
            "and enable HA; nothing needs restoring. Then call that run off: "
            f"{omsup_command('abandon', up.data.runbook, '--env', run.env.source)} --reason ...",
        )
    return {"containers": holders, "oms_version": rows}


def rollback_preflight(run: Run) -> None:
    up = upgrade_record(run)
    f = up.facts
    follow_rehearsal(run, {k: v.image_id for k, v in f.nodes.items()}, packages_on=None)
    run.evidence(
        "upgrade run ledger",
        {
            "path": str(up.path),
            "status": up.data.status,
            "steps": {k: v.model_dump() for k, v in up.data.steps.items()},
            "rolled_back": up.data.rolled_back.model_dump() if up.data.rolled_back else None,
        },
    )
    if up.data.rolled_back is not None:
        raise NothingToDo(
            f"upgrade run {up.run_id} was rolled back already (by rollback run {up.data.rolled_back.by} at "
            f"{up.data.rolled_back.at}); rolling it back again would drop and restore the metadata from its "
            "pre-upgrade backups and lose everything written since",
            "nothing to do: the deployment runs the version before that upgrade",
        )
    if not up.step_done(BACKUP.key):
        raise NothingToDo(
            f"the upgrade run {up.run_id} has no verified backups (its backup step did not "
            "finish), so there is nothing to roll back to",
            "if the databases were never changed, just restart the old containers (docker start) and enable HA; "
            f"then call that run off: {omsup_command('abandon', up.data.runbook, '--env', run.env.source)} --reason ...",
        )
    if not f.t1 and not run.env.ha.perceive_store_client_checkpoint:
        raise PreconditionRefused(f"the upgrade run {up.run_id} recorded no T1")
    # backups: every file listed, with its size, SHA-256 and completion marker
    verify_backups(run, manifest=f.backups)

    def old_container(n: Node) -> dict[str, Any]:
        reachable(run, n)
        nf = f.nodes.get(n.name)
        if nf is None:
            raise PreconditionRefused(f"the upgrade ledger has no record of node {n.name}")
        attrs = run.engines[n.name].inspect(nf.container_id)
        if attrs is None:
            raise PreconditionRefused(
                f"node {n.name}: the old container {nf.container_id[:12]} "
                f"({nf.kept_as or nf.name}) no longer exists; cannot roll back",
                "restore it from its image with the recorded binds before rolling back",
            )
        if attrs["Image"] != nf.image_id:
            raise PreconditionRefused(
                f"node {n.name}: the old container now has image {attrs['Image'][:19]}, recorded {nf.image_id[:19]}"
            )
        if sorted(binds_of(attrs)) != sorted(nf.binds):  # the same mounts, in whatever order the engine keeps
            raise PreconditionRefused(f"node {n.name}: the old container's binds changed: {binds_of(attrs)}")
        return {"container": nf.container_id[:12], "name_now": attrs["Name"].lstrip("/"), "image": nf.image}

    found = run.each_node(old_container, what="old container present")
    run.evidence("the deployment as the upgrade left it", _upgraded(run, up))
    # the restore side, the same way as the upgrade's: a missing client never surfaces after a DROP
    source = Version.parse(f.versions.source) if f.versions else run.runbook.target
    metadb_preconditions(run, source, dump=False, dump_heads=[run.backup_host.head_line(b.path) for b in f.backups])
    with run.record.change() as rf:
        rf.upgrade = UpgradeRef(
            run_id=up.run_id,
            ledger=str(up.path),
            t1=f.t1,
            versions=f.versions,
            backups=f.backups,
            nodes=f.nodes,
            ha_before=f.ha_before,
            projects_before=f.projects_before,
        )
    run.evidence("old containers", found)


def verify_rollback_preflight(run: Run) -> None:
    if run.facts.upgrade is None:
        raise PreconditionRefused(
            "this rollback's ledger has no copy of the upgrade's record", "run the rollback from its preflight"
        )


ROLLBACK_PREFLIGHT = Step(
    "rollback_preflight",
    "Preflight (changes nothing)",
    rollback_preflight,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.METADB, Touches.BACKUP}),
    False,
    None,
    verify_rollback_preflight,
    taken_once=True,  # the copy of the upgrade's record: backups, T1, the old containers
)
