"""The upgrade steps (doc 003 and 004), shared by every upgrade runbook."""

from __future__ import annotations

import functools
import json
import posixpath
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any

from ..adapters.hosts import Host
from ..audit import AUDIT
from ..container_spec import REQUIRED_TARGETS, ContainerSpec, bind_target
from ..context import Run
from ..envfile import Node
from ..errors import BackupProblem, ContainerProblem, PreconditionRefused
from ..ledger import utc_now
from ..projects import forbidden_reason
from ..runbook import Step
from ..versions import MIN_VERSION_FOR_4X_INIT, OMS_VERSION_DDL, Version, VersionError, check_upgrade
from . import common as c

LOAD_IMAGE_KEY = "load_image"
BACKUP_KEY = "backup"
SPACE_MARGIN = 1.5  # dumps are estimated at 1.5 x the data and index size, plus 64 MiB
SPACE_EXTRA = 64 * 1024 * 1024
INIT_TOO_OLD = "Version before 4.1.1 is not allowed to upgrade"


# == 0. Preflight ==============================================================================
def _reachable(run: Run, node: Node) -> dict[str, Any]:
    run.hosts[node.name].check("true", what="reach the host")
    run.engines[node.name].ping()
    attrs = run.engines[node.name].inspect(run.env.container)
    if attrs is None:
        raise PreconditionRefused(f"node {node.name}: no container named {run.env.container}",
                                  "check 'container' in the environment file (docker ps -a on the node)")
    return attrs


def _inspect_old(run: Run, node: Node) -> dict[str, Any]:
    attrs = _reachable(run, node)
    state = attrs.get("State") or {}
    if not state.get("Running"):
        raise PreconditionRefused(f"node {node.name}: container {run.env.container} is not running "
                                  f"(status {state.get('Status')}); the procedure starts from a running deployment")
    binds = c.binds_of(attrs)
    missing = [t for t in REQUIRED_TARGETS if t not in {bind_target(b) for b in binds}]
    if missing:
        raise PreconditionRefused(f"node {node.name}: container {run.env.container} lacks the documented mounts "
                                  f"{', '.join(missing)}; binds seen: {binds}")
    env = c.env_of(attrs)
    if env.get("OMS_HOST_IP") != node.ip:
        raise PreconditionRefused(f"node {node.name}: the container's OMS_HOST_IP is {env.get('OMS_HOST_IP')!r}, "
                                  f"the environment file says ip {node.ip}", "correct the node's ip in the environment file")
    version = c.image_version(run, node, attrs)
    cfg = c.read_node_config(run, node, binds)
    region = next(r for r in run.env.regions if r.name == node.region)
    for key, want in (("drc_rm_db", run.env.metadb.rm), ("drc_cm_db", run.env.metadb.cm),
                      ("drc_cm_heartbeat_db", region.cm_hb)):
        if str(cfg.get(key)) != want:
            raise PreconditionRefused(f"node {node.name}: config.yaml has {key}={cfg.get(key)!r}, the environment file "
                                      f"says {want!r}", "the environment file must describe this deployment's MetaDB")
    image_env = {}
    try:
        img = run.engines[node.name].client.images.get(attrs["Image"])
        image_env = c.env_of({"Config": img.attrs.get("Config") or {}})
    except Exception:  # noqa: BLE001 - the image's defaults only trim the carried-over variables
        pass
    user_env = {k: v for k, v in env.items() if image_env.get(k) != v and k not in ("OMS_HOST_IP", "IS_UPGRADE")}
    return {
        "container_id": attrs["Id"], "name": run.env.container, "image": attrs["Config"]["Image"],
        "image_id": attrs["Image"], "binds": binds, "env": sorted(f"{k}={v}" for k, v in env.items()),
        "user_env": user_env, "version": str(version) if version else None,
        "cm_nodes": sorted(str(x) for x in (cfg.get("cm_nodes") or [])),
    }


def _package(run: Run, node: Node, target: Version) -> dict[str, Any]:
    path = run.env.packages.get(target)
    if path is None:
        raise PreconditionRefused(f"the environment file has no installation package for {target}",
                                  f"add packages: {{{target}: /path/on/the/nodes.tar.gz}} to the environment file")
    host = run.hosts[node.name]
    if host.run("test -r %s", path).rc != 0:
        raise PreconditionRefused(f"node {node.name}: installation package {path} is missing or unreadable",
                                  f"copy the {target} installation package to {path} on {node.name}")
    # tar reads the whole archive (the manifest is written last), so gzip's CRC check covers it all
    listing = host.run("tar -xzOf %s manifest.json", path, quiet=True)
    if listing.rc != 0:
        raise PreconditionRefused(f"node {node.name}: {path} is not a complete image archive (damaged download?): "
                                  f"tar says {listing.stderr.strip()[-300:]!r}")
    manifest = listing.stdout
    try:
        tags = manifest_tags(manifest)
    except ValueError as e:
        raise PreconditionRefused(f"node {node.name}: {path} is not a docker save archive ({e})") from e
    for tag in tags:
        try:
            if Version.from_image_tag(tag.rsplit(":", 1)[-1]) == target:
                return {"path": path, "image": tag}
        except VersionError:
            continue
    raise PreconditionRefused(f"node {node.name}: {path} holds {tags or 'no tagged image'}, not {target}",
                              "put the installation package of the target version there")


def manifest_tags(text: str) -> list[str]:
    """RepoTags of a `docker save` manifest.json. Raises ValueError when it is not one."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ValueError("manifest.json is not JSON") from e
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise ValueError("manifest.json is not a list of images")
    tags = [t for e in doc for t in (e.get("RepoTags") or [])]
    if not all(isinstance(t, str) for t in tags):
        raise ValueError("manifest.json has RepoTags that are not strings")
    return tags


def _projects(run: Run, source: Version) -> list[dict[str, Any]]:
    """Every project with its steps: ListProjects from V4.1.1-CE (doc), the MetaDB before that."""
    if source >= Version.parse("4.1.1"):
        console = run.consoles[run.env.nodes[0].name]
        found = [{**p, "steps": console.project_steps(str(p["id"]))} for p in console.list_projects()]
    else:
        found = run.metadb.projects(run.env.metadb.rm)
    return [{"id": p["id"], "name": p.get("name"), "type": p.get("type"), "status": p.get("status"),
             "steps": {s.get("name"): s.get("status") for s in p["steps"]},
             "forbidden": forbidden_reason(p, p["steps"])} for p in found]


def preflight(run: Run) -> None:
    """Changes nothing: reachability, versions, package, MetaDB, backup room, projects; records the old containers."""
    target = run.runbook.target_version
    if run.runbook.single_node and len(run.env.nodes) != 1:
        raise PreconditionRefused(f"{run.runbook.name} is the single-node procedure (doc {run.runbook.doc}); the "
                                  f"environment has {len(run.env.nodes)} nodes", "use the multi-node runbook")
    run.live("preflight: inspecting nodes")
    old = run.each_node(lambda n: _inspect_old(run, n), what="old container inspected")
    versions = {n: Version.parse(f["version"]) for n, f in old.items() if f["version"]}
    if len(set(versions.values())) > 1:
        raise PreconditionRefused(f"the nodes run different versions: {json.dumps({k: str(v) for k, v in versions.items()})}")
    rm = run.env.metadb.rm
    run.metadb.ping()
    existing = run.metadb.existing_databases()
    missing = [name for _, name in run.env.databases() if name not in existing]
    if missing:
        raise PreconditionRefused(f"the MetaDB {run.metadb.label} lacks {', '.join(missing)}",
                                  "check metadb.rm, metadb.cm and each region's cm_hb in the environment file")
    oms_version_rows = run.metadb.oms_versions(rm)
    image_v = next(iter(versions.values()), None)
    meta_v = max((Version.parse(v) for v in oms_version_rows), default=None) if oms_version_rows else None
    if meta_v and image_v and meta_v != image_v:
        raise PreconditionRefused(f"oms_version in {rm} says {meta_v}, the running image says {image_v}",
                                  "a previous upgrade may be half done; investigate before upgrading")
    source = meta_v or image_v
    if source is None:
        raise PreconditionRefused("cannot tell the running version: no oms_version row and no version in the image tag")
    if run.env.version is not None and run.env.version != source:
        raise PreconditionRefused(f"the environment file expects {run.env.version}, the deployment runs {source}",
                                  "correct 'version' in the environment file, or check you are on the right deployment")
    try:
        check_upgrade(source, target)
    except VersionError as e:
        raise PreconditionRefused(str(e), "follow the documented upgrade path (python -m omsup path FROM TO)") from e
    packages = run.each_node(lambda n: _package(run, n, target), what="installation package checked")
    sizes = run.metadb.sizes([name for _, name in run.env.databases()])
    need = int(sum(sizes.values()) * SPACE_MARGIN) + SPACE_EXTRA
    bh, folder = run.backup_host, run.env.backup.dir
    if bh.run("test -d %s -a -w %s", folder, folder).rc != 0:
        raise PreconditionRefused(f"backup folder {folder} on {bh.label} does not exist or is not writable",
                                  f"create it (mkdir -p {folder}; chmod 700 {folder}) on {bh.label}")
    free = bh.free_bytes(folder)
    if free < need:
        raise PreconditionRefused(f"backup folder {folder} on {bh.label} has {free} bytes free; the dumps need about "
                                  f"{need} (database sizes {sizes} x {SPACE_MARGIN} + 64 MiB)",
                                  "free space there or point backup.dir elsewhere")
    projects = _projects(run, source)
    run.evidence("projects", projects)
    bad = [p for p in projects if p["forbidden"]]
    if bad:
        lines = "; ".join(f"{p['name']} ({p['id']}): {p['forbidden']}" for p in bad)
        raise PreconditionRefused(f"projects in a state the documents forbid for an upgrade: {lines}",
                                  "wait until they are real-time and their forward switchover is done (doc 000/001)")
    if any(s.step.key == "connector_dbtype" for s in run.runbook.steps):  # docs 000/001: check dbType first
        from .connectors import survey

        found = survey(run)
        run.evidence("Connectors lacking dbType/db_type that need it (fixed in the next step)",
                     [r for r in found["connectors"] if r["needs_fix"]])
        run.ledger.set("connectors_before", found)
    ha = run.metadb.ha_config(rm)
    run.ledger.set("versions", {"source": str(source), "target": str(target), "oms_version_before": oms_version_rows})
    run.ledger.set("nodes", old)
    run.ledger.set("packages", packages)
    run.ledger.set("projects_before", projects)
    run.ledger.set("ha_before", ha)
    run.ledger.set("sizes", sizes)
    run.evidence("old containers (binds, environment, image)", old)
    run.evidence("versions", run.ledger.get("versions"))
    run.evidence("backup room", {"folder": folder, "host": bh.label, "free": free, "needed": need, "sizes": sizes})


def verify_preflight(run: Run) -> None:
    """On resume: the ledger holds what the preflight learned (each later step checks what it uses)."""
    for n in run.env.nodes:
        c.node_facts(run, n.name)
    for key in ("versions", "packages", "ha_before"):
        if run.ledger.get(key) is None:
            raise PreconditionRefused(f"the run ledger {run.ledger.path} lacks '{key}' from the preflight",
                                      "move this ledger aside deliberately and start the runbook anew")


PREFLIGHT = Step("preflight", "Preflight (changes nothing)", preflight, None, verify_preflight)


# == 2. Stop the old containers ================================================================
def stop_old(run: Run) -> None:
    early = run.background.get(LOAD_IMAGE_KEY)
    if early is not None:  # let the early image load finish first: it is not downtime then (step 5 reports it)
        run.live("waiting for the image load started after the preflight")
        futures_wait([early])
    c.stop_containers(run, "t1", lambda n: c.node_facts(run, n.name)["container_id"], "old", gone_ok=False)
    verify_stopped(run)
    run.evidence("T1", run.ledger.get("t1"))


def verify_stopped(run: Run) -> None:
    def check(n: Node) -> str:
        facts = c.node_facts(run, n.name)
        attrs = c.container_by_id(run, n, facts["container_id"])
        assert attrs is not None, f"node {n.name}: the old container {facts['container_id'][:12]} is gone"
        assert not attrs["State"].get("Running"), f"node {n.name}: the old container still runs"
        return attrs["State"].get("Status")

    run.each_node(check, what="old container not running")


def plan_stop_old(run: Run) -> list[str]:
    return [f"{n.name}: docker stop {run.env.container}  (record T1 before)" for n in run.env.nodes]


STOP_OLD = Step("stop_old", "Stop the old containers, record T1", stop_old, plan_stop_old, verify_stopped)


# == 3. Prune heartbeats =========================================================================
def prune(run: Run) -> None:
    results = {}
    for region in run.env.regions:
        db = region.cm_hb
        before = run.metadb.query("SELECT COUNT(*), MAX(id) FROM heatbeat_sequence", db=db)[0]
        deleted = run.metadb.prune_heartbeats(db)
        after = run.metadb.query("SELECT COUNT(*), MAX(id), MIN(id) FROM heatbeat_sequence", db=db)[0]
        results[db] = {"rows_before": before[0], "max_id": before[1], "deleted": deleted, "rows_after": after[0]}
        if before[0]:
            assert after[0] == 1 and after[1] == before[1] and after[2] == before[1], (
                f"{db}.heatbeat_sequence: expected only the newest row (id {before[1]}) to remain, "
                f"saw {after[0]} rows with ids {after[2]}..{after[1]}")
    run.ledger.set("prune", results)
    run.evidence("heartbeats pruned", results)


def plan_prune(run: Run) -> list[str]:
    from ..adapters.metadb import PRUNE_SQL

    return [f"[{r.cm_hb}] {PRUNE_SQL}" for r in run.env.regions]


PRUNE = Step("prune_heartbeats", "Prune heartbeats", prune, plan_prune)


# == 4. Back up ==================================================================================
def backup_folder(run: Run) -> str:
    attempt = int(run.ledger.get("backup_attempt") or 0)
    return posixpath.join(run.env.backup.dir, run.env.name, f"{run.runbook.name}-{run.ledger.run_id}-a{attempt}")


def backup(run: Run) -> None:
    """mysqldump rm, cm and every cm_hb; non-empty, complete, size and SHA-256, table checksums."""
    run.ledger.set("backup_attempt", int(run.ledger.get("backup_attempt") or 0) + 1)  # never reuse a folder
    folder = backup_folder(run)
    bh = run.backup_host
    bh.check("umask 077; mkdir -p -- %s && test -z \"$(ls -A -- %s)\"", folder, folder,
             what=f"create the empty backup folder {folder}")
    manifest: list[dict[str, Any]] = []
    run.ledger.set("backups", manifest)

    def stats_of(db: str) -> dict[str, Any]:
        with AUDIT.in_step(BACKUP_KEY):
            return run.metadb.table_stats(db)

    # Row counts and CHECKSUM TABLE read every table once more: they run beside the dumps (OMS is
    # stopped, nothing writes), in their own MetaDB connection, instead of before each one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        stats = {db: pool.submit(stats_of, db) for _, db in run.env.databases()}
        for role, db in run.env.databases():
            _backup_one(run, bh, folder, role, db, stats[db], manifest)
    verify_backups(run, rehash=False)  # each file was hashed from disk a moment ago


def _backup_one(run: Run, bh: Host, folder: str, role: str, db: str, stats: Any, manifest: list[dict[str, Any]]) -> None:
    run.live(f"backup: dumping {db}")
    charset, collation = run.metadb.charset(db)
    dest = posixpath.join(folder, f"{db}.sql")
    with run.watch(f"backup: {dest}", functools.partial(_size_of, bh, dest + ".partial")):
        run.metadb.dump(bh, folder, db, dest)
    facts = bh.file_facts(dest)
    if facts is None or facts["size"] == 0:
        raise BackupProblem(f"the dump of {db} at {dest} on {bh.label} is empty or missing",
                            "check the mysqldump output above and the disk; run again to take a new backup")
    tail = bh.tail(dest, 200)
    if "-- Dump completed" not in tail:
        raise BackupProblem(f"the dump of {db} at {dest} has no completion marker ('-- Dump completed'); "
                            f"it is incomplete. Last bytes: {tail[-120:]!r}")
    entry = {"role": role, "db": db, "host": bh.spec, "path": dest, "size": facts["size"],
             "sha256": facts["sha256"], "tables": stats.result(), "charset": charset, "collation": collation,
             "taken": utc_now()}
    manifest.append(entry)
    run.ledger.set("backups", manifest)  # on disk as soon as each file is verified


def _size_of(host: Host, path: str) -> str:
    r = host.run("stat -c %%s -- %s", path, quiet=True)
    return f"{int(r.stdout.strip()) / 1e6:.1f} MB so far" if r.rc == 0 else "starting"


def recheck_backup(bh: Host, b: dict[str, Any], then: str = "") -> None:
    """The file is there with its recorded size and SHA-256 (hashed again, on its host) and complete;
    ``then`` adds what that means where it is checked."""
    facts = bh.file_facts(b["path"])
    if facts is None:
        raise BackupProblem(f"backup {b['path']} on {bh.label} is missing{then}")
    if facts["size"] != b["size"] or facts["sha256"] != b["sha256"]:
        raise BackupProblem(f"backup {b['path']} on {bh.label} changed since it was taken: size {facts['size']} "
                            f"(recorded {b['size']}), sha256 {facts['sha256']} (recorded {b['sha256']}){then}",
                            "do not roll back from it; investigate who changed it")
    if "-- Dump completed" not in bh.tail(b["path"], 200):
        raise BackupProblem(f"backup {b['path']} on {bh.label} has no completion marker{then}")


def verify_backups(run: Run, rehash: bool = True) -> None:
    """Every backup in the ledger exists with its recorded size and SHA-256 and is complete."""
    manifest = run.ledger.get("backups") or []
    expected = {db for _, db in run.env.databases()}
    have = {b["db"] for b in manifest}
    if have != expected:
        raise BackupProblem(f"the backup manifest covers {sorted(have)}, expected {sorted(expected)}")
    if rehash:
        for b in manifest:
            recheck_backup(run.backup_host, b)
    run.evidence("backup manifest", [{k: v for k, v in b.items() if k != "tables"} for b in manifest])
    run.evidence("table row counts and checksums at backup time", {b["db"]: b["tables"] for b in manifest})


def plan_backup(run: Run) -> list[str]:
    folder = posixpath.join(run.env.backup.dir, run.env.name, f"{run.runbook.name}-<run id>-a1")
    return [f"on {run.env.backup.host}: mysqldump --defaults-extra-file=<0600 file> --single-transaction "
            f"--triggers=false {db} > {folder}/{db}.sql  (then: not empty, '-- Dump completed', size, SHA-256)"
            for _, db in run.env.databases()]


BACKUP = Step(BACKUP_KEY, "Back up rm, cm and every cm_hb", backup, plan_backup, verify_backups)


# == 5. Load the image ===========================================================================
def _load_on(run: Run, n: Node) -> dict[str, Any]:
    pk = (run.ledger.get("packages") or {})[n.name]
    out = "already present"
    if not run.engines[n.name].has_image(pk["image"]):
        run.live(f"{n.name}: docker load -i {pk['path']}")
        out = run.hosts[n.name].check(c.docker_cli(n) + " load -i %s", pk["path"], what="docker load")
    assert run.engines[n.name].has_image(pk["image"]), f"node {n.name}: image {pk['image']} absent after load"
    return {"image": pk["image"], "docker load": out.strip()}


def preload_images(run: Run) -> None:
    """Start `docker load -i` on every node in the background, before the old containers stop.

    doc 004 loads the image after the backup, while OMS is down; loading it earlier shortens
    the downtime and changes nothing the procedure depends on. Step 5 waits for it, and the
    report says so.
    """
    if run.plan or run.ledger.step_done(LOAD_IMAGE_KEY):
        return

    def work() -> dict[str, Any]:
        with AUDIT.in_step(LOAD_IMAGE_KEY):
            def one(n: Node) -> dict[str, Any]:
                with AUDIT.node(n.name), AUDIT.in_step(LOAD_IMAGE_KEY):
                    return _load_on(run, n)

            with ThreadPoolExecutor(max_workers=max(1, len(run.env.nodes))) as pool:
                return dict(zip([n.name for n in run.env.nodes], pool.map(one, run.env.nodes), strict=True))

    run.background[LOAD_IMAGE_KEY] = ThreadPoolExecutor(max_workers=1).submit(work)


def load_image(run: Run) -> None:
    early = run.background.pop(LOAD_IMAGE_KEY, None)
    if early is not None:
        results = early.result()  # a failure of the early load fails this step, with its message
        run.evidence("loaded in advance, before the old containers stopped, to shorten the downtime", results)
    run.each_node(lambda n: _load_on(run, n), what="docker load -i")


def verify_loaded(run: Run) -> None:
    packages = run.ledger.get("packages") or {}
    for n in run.env.nodes:
        assert run.engines[n.name].has_image(packages[n.name]["image"]), f"node {n.name}: target image missing"


def plan_load(run: Run) -> list[str]:
    pk = run.ledger.get("packages") or {}
    return [f"{n.name}: docker load -i {pk.get(n.name, {}).get('path')}  (expect {pk.get(n.name, {}).get('image')})"
            for n in run.env.nodes]


LOAD_IMAGE = Step(LOAD_IMAGE_KEY, "Load the new image", load_image, plan_load, verify_loaded)


# == 6. Start the new containers =================================================================
def new_spec(run: Run, n: Node) -> ContainerSpec:
    facts = c.node_facts(run, n.name)
    image = (run.ledger.get("packages") or {})[n.name]["image"]
    return ContainerSpec(run.env.container, image, tuple(facts["binds"]), n.ip, upgrade=True,
                         extra_env=tuple(sorted((facts.get("user_env") or {}).items())),
                         labels=((RUN_LABEL, run.ledger.run_id),))


RUN_LABEL = "omsup.run"


def kept_name(run: Run) -> str:
    return f"{run.env.container}-pre-{run.ledger.get('versions')['source']}-{run.ledger.run_id}"


def start_new(run: Run) -> None:
    def start(n: Node) -> dict[str, Any]:
        facts = c.node_facts(run, n.name)
        eng = run.engines[n.name]
        current = eng.inspect(run.env.container)
        if current is not None and current["Id"] == facts["container_id"]:
            # keep the old container for rollback: it gives its name to the new one
            c.set_node_fact(run, n.name, "kept_as", kept_name(run))
            eng.rename(facts["container_id"], kept_name(run))
            current = None
        if current is None:
            spec = new_spec(run, n)
            run.evidence(f"{n.name}: docker run", spec.command_line())
            attrs = eng.run(spec)
            c.set_node_fact(run, n.name, "new_container_id", attrs["Id"])
        elif current["Id"] == facts.get("new_container_id") or (
                (current["Config"].get("Labels") or {}).get(RUN_LABEL) == run.ledger.run_id):
            # resume: this run created it (perhaps interrupted before it wrote the ledger)
            c.set_node_fact(run, n.name, "new_container_id", current["Id"])
            if not current["State"].get("Running"):
                eng.start(current["Id"])
        else:
            raise ContainerProblem(f"node {n.name}: a container named {run.env.container} exists that is neither the "
                                   f"old one nor the one this run created ({current['Id'][:12]})",
                                   "someone else changed the node; investigate before going on")
        return check_new(run, n)

    run.each_node(start, what="new container started")


def check_new(run: Run, n: Node) -> dict[str, Any]:
    facts = c.node_facts(run, n.name)
    attrs = run.engines[n.name].inspect(run.env.container)
    assert attrs is not None and attrs["Id"] == facts.get("new_container_id"), (
        f"node {n.name}: the new container is not there")
    new_binds = c.binds_of(attrs)
    assert new_binds == facts["binds"], (
        f"node {n.name}: the new container's binds differ from the old ones.\n  old: {facts['binds']}\n  new: {new_binds}")
    env = c.env_of(attrs)
    assert env.get("IS_UPGRADE") == "true" and env.get("OMS_HOST_IP") == n.ip, (
        f"node {n.name}: the new container lacks IS_UPGRADE=true or OMS_HOST_IP={n.ip}: {env}")
    # started means still running a moment later (a failing entry point exits at once)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        c.require_running(run, n)
        time.sleep(0.5)
    return {"old_binds": facts["binds"], "new_binds": new_binds, "image": attrs["Config"]["Image"],
            "env": sorted(f"{k}={v}" for k, v in env.items())}


def verify_new(run: Run) -> None:
    run.each_node(lambda n: check_new(run, n), what="new container checked")


def plan_start(run: Run) -> list[str]:
    out = []
    for n in run.env.nodes:
        out.append(f"{n.name}: docker rename {run.env.container} {run.env.container}-pre-<source>-<run id>  "
                   "(old container kept for rollback)")
        out.append(f"{n.name}: {new_spec(run, n).command_line()}")
    return out


START_NEW = Step("start_new", "Start the new containers with the old binds", start_new, plan_start, verify_new)


# == 7. Initialize metadata ======================================================================
def init_targets(run: Run) -> list[Node]:
    """doc 004: once per region when the nodes' cm_nodes are identical, on every node otherwise."""
    out: list[Node] = []
    for region in run.env.regions:
        lists = {tuple(c.node_facts(run, n.name)["cm_nodes"]) for n in region.nodes}
        out.extend(region.nodes[:1] if len(lists) == 1 else region.nodes)
    return out


def _recover_oms_version(run: Run) -> None:
    """doc 004: create oms_version in rm and REPLACE the version before the upgrade."""
    source = Version.parse(run.ledger.get("versions")["source"])
    assert source >= MIN_VERSION_FOR_4X_INIT, (
        f"docker_init.sh says '{INIT_TOO_OLD}' and the version before the upgrade is {source}: "
        "doc 004 allows the recovery only from V4.1.1-CE on")
    rm = run.env.metadb.rm
    run.metadb.execute(OMS_VERSION_DDL, db=rm)
    run.metadb.execute("REPLACE INTO `oms_version`(`version`) VALUES(%s)", (str(source),), db=rm)
    run.ledger.set("oms_version_recovery", {"version": str(source), "at": utc_now()})


def init_metadata(run: Run) -> None:
    def ready(n: Node) -> str:
        run.live(f"{n.name}: waiting until the container is ready for docker_init.sh")
        c.wait_until(lambda: c.init_ready(run, n), c.READY_TIMEOUT,
                     lambda: f"node {n.name}: `supervisorctl status` does not answer in the new container; "
                             f"last log lines:\n{run.engines[n.name].logs(run.env.container, 15)}",
                     interval=0.2, live=lambda m: run.live(f"{n.name}: readiness for docker_init.sh: {m}"))
        return "ready"

    targets = init_targets(run)
    run.each_node(ready, targets, what="ready for docker_init.sh")
    outputs: dict[str, Any] = run.ledger.get("init_outputs") or {}
    for n in targets:  # sequential: every run changes the shared rm and cm schemas
        rc, out = c.container_exec(run, n, "bash", "/root/docker_init.sh")
        record = [{"rc": rc, "output": out[-4000:]}]
        if rc != 0 and INIT_TOO_OLD in out:
            _recover_oms_version(run)
            rc, out = c.container_exec(run, n, "bash", "/root/docker_init.sh")
            record.append({"rc": rc, "output": out[-4000:], "after": "oms_version recovery (doc 004)"})
        outputs[n.name] = record
        run.ledger.set("init_outputs", outputs)
        run.evidence(f"{n.name}: docker_init.sh output", "\n---\n".join(f"exit {r['rc']}\n{r['output']}" for r in record))
        if rc != 0:
            last, shown = c.output_summary(out)
            # docker_init.sh changes the MetaDB: when that does not answer, that is the cause to name
            run.metadb.blame_if_down(f"node {n.name}: /root/docker_init.sh exited {rc} ({last})",
                                     "running the runbook again resumes here (docker_init.sh is idempotent)")
            raise ContainerProblem(f"node {n.name}: /root/docker_init.sh exited {rc}: {last}\n  its last lines:\n{shown}",
                                   "fix the cause; running the runbook again resumes here (docker_init.sh is idempotent)")
    if run.ledger.get("oms_version_recovery"):
        run.evidence("oms_version recovery applied (doc 004)", run.ledger.get("oms_version_recovery"))
    run.each_node(lambda n: c.wait_serving(run, n), what="console serves")
    run.ledger.set("serving_again", utc_now())


def verify_init(run: Run) -> None:
    run.each_node(lambda n: c.wait_serving(run, n), what="console serves")


def plan_init(run: Run) -> list[str]:
    return [f"{n.name}: poll until `supervisorctl status` answers, then docker exec {run.env.container} bash "
            f"/root/docker_init.sh (on '{INIT_TOO_OLD}': create oms_version, REPLACE the old version, run again)"
            for n in init_targets(run)] + ["every node: poll /oms/health until healthy and 'OMS service start successfully'"]


INIT = Step("init_metadata", "Initialize metadata (docker_init.sh)", init_metadata, plan_init, verify_init)


# == 8. Verify ===================================================================================
def verify_upgrade(run: Run) -> None:
    target = run.runbook.target_version
    rows = run.metadb.oms_versions(run.env.metadb.rm)
    run.evidence("oms_version rows", rows)
    if target >= Version.parse("4.2.1"):
        assert rows, f"{run.env.metadb.rm}.oms_version does not exist after the upgrade"
    if rows:
        newest = max(Version.parse(v) for v in rows)
        assert newest == target, f"oms_version says {newest}, expected {target}"
    servers = c.servers_online(run)
    run.evidence("servers", servers)
    health = {n.name: run.consoles[n.name].health() for n in run.env.nodes}
    run.evidence("health", health)
    for name, h in health.items():
        assert h.get("healthy") is True, f"node {name}: /oms/health says healthy={h.get('healthy')!r}"
    images = {}
    for n in run.env.nodes:
        attrs = run.engines[n.name].inspect(run.env.container) or {}
        images[n.name] = c.image_version(run, n, attrs)
        assert images[n.name] == target, f"node {n.name} runs {images[n.name]}, expected {target}"
    run.ledger.set("verified", {"oms_version": rows, "servers": servers, "images": {k: str(v) for k, v in images.items()}})


VERIFY = Step("verify", "Verify version, servers Online, health", verify_upgrade, None, verify_upgrade)


# == 9. Enable HA ================================================================================
def enable_ha(run: Run) -> None:
    c.enable_ha_after(run, "t1", "t2")


def plan_enable(run: Run) -> list[str]:
    if run.env.ha.perceive_store_client_checkpoint:
        return ["record T2; set ha.config enable=true, perceiveStoreClientCheckpoint=true; read back"]
    return [f"record T2; set ha.config enable=true, refetchStoreIntervalMin = max(current, whole minutes of T2-T1 "
            f"+ 1 + {run.env.ha.refetch_margin_min}); read back"]


ENABLE_HA = Step("enable_ha", "Enable HA, record T2", enable_ha, plan_enable,
                 lambda run: c.verify_ha_enabled(run, "t1", "t2"))


# == 10. After the upgrade =======================================================================
def after_upgrade(run: Run) -> None:
    """doc 004 HA table: every task's status remains unchanged by the upgrade."""
    before = {p["id"]: p for p in run.ledger.get("projects_before") or []}
    after = {p["id"]: p for p in _projects(run, run.runbook.target_version)}
    rows = [{"id": pid, "name": p.get("name"), "before": p.get("status"),
             "after": after.get(pid, {}).get("status")} for pid, p in before.items()]
    run.evidence("task status before and after (doc 004 HA table: remains unchanged)", rows)
    changed = [r for r in rows if r["before"] != r["after"]]
    assert not changed, f"task status changed across the upgrade: {changed}"
    run.ledger.set("projects_after", list(after.values()))
    # the run ends on a deployment that works: every node still serves
    gone = [n.name for n in run.env.nodes if not c.serving(run, n)]
    assert not gone, f"at the end of the upgrade, node(s) {', '.join(gone)} no longer serve (health or log line missing)"


AFTER = Step("after_upgrade", "Task states as the HA table expects", after_upgrade)
