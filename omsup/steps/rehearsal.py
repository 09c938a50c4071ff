"""The dress rehearsal (issue 29): the upgrade and its rollback, run exactly as production will run them, on a replica
of the deployment built on the rehearsal host from the deployment's own images and metadata.

Production is only read: its MetaDB is dumped (mysqldump, as the backup step does), node 1's engine saves the image
the old containers run (by image ID), each node's config.yaml and container are inspected, the installation package
is hashed. The replica (omsup/adapters/replica.py) is a hub namespace with the scratch MetaDB (a private
OceanBase-kernel server) and one namespace per node with its own Docker engine; the replica's config.yaml and the
metadata that name node addresses (cluster_info.cm_url, cm.host.ip; config.yaml's oms_meta_*, cm_url, cm_nodes) are
mapped to the replica's addresses, and the mapping is recorded. The rehearsed runbooks run inside the hub with an
environment file of the replica: the replica's consoles, engines and MetaDB are all they can reach.

What the rehearsal observes goes to rehearsal.json (the run folder, and <rehearsal dir>/<run id>/): what the product
did where the documents are silent (issue "plausible products"), the time of every step and the outage, the
rollback's comparison of the tables, and the identities it rehearsed with. An upgrade run with ``--rehearsal FILE``
checks those identities before any change (steps/preflight.py, ``follow_rehearsal``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ..adapters.engine import Engine
from ..adapters.hosts import Host
from ..adapters.metadb import MetaDB, quote_ident
from ..adapters.oms import Oms
from ..adapters.replica import (
    NetnsHost,
    ReplicaNet,
    lacks,
    make_tls,
    map_addresses,
    prepare_clone,
    remove_container,
    remove_replica_files,
    run_runbook,
    seekdb_argv,
    seekdb_binary,
    unmount_engine,
    wait_healthy,
    wait_sql,
)
from ..container_spec import CERT_TARGETS, CONFIG_TARGET, DATA_TARGETS, ContainerSpec, bind_target
from ..context import Run
from ..envfile import MetaDB as MetaDBConfig
from ..envfile import Secret
from ..errors import BackupProblem, ContainerProblem, DumpLacksTables, OmsupError, PreconditionRefused
from ..record import parse_utc, utc_now
from ..redact import register
from ..releases import release_of
from ..runbook import Step, Touches
from ..versions import Version, VersionError, check_upgrade, metadb_engine, rule_for
from .assumption_checks import HEARTBEAT_PERIOD
from .backup import OB_NOTE, long_dump_sessions, set_back_noted
from .metadb_checks import read_config
from .preflight import inspect_old
from .readings import deployment_version

CLONE_PORT = 2881  # the scratch MetaDB's port inside the hub (a namespace of its own: no clash with anything)
CLONE_USER = "omsup_rehearsal"
HEALTH_WAIT_S = 120
# OceanBase's answers to a session that ran out of its timeouts (ODP's ob_errno.h: OB_TIMEOUT -4012 "Timeout",
# OB_TRANS_TIMEOUT -6210 "Transaction is timeout", OB_TRANS_STMT_TIMEOUT -6212 "Statement is timeout"); 4012 after
# ob_query_timeout was tried here on seekdb 1.4 (the ob_dump_timeouts assumption)
OB_TIMED_OUT = re.compile(
    r"\b(4012|6210|6212)\b|Timeout, query has reached|Transaction is timeout|Statement is timeout"
)
ADDRESS_TABLES = "rm.cluster_info.cm_url, cm.host.ip, cm.connector_task.host_ip (where it exists)"  # the documented metadata that names node addresses


def _private_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _net(run: Run) -> ReplicaNet:
    rid = str((run.facts.rehearsal or {}).get("id"))
    name = "rh" + hashlib.sha256(rid.encode()).hexdigest()[:6]
    return ReplicaNet(Host("local://", "rehearsal host"), name, len(run.env.nodes), run.env.rehearsal.subnet)


# -- step 0: what the rehearsal takes from production, reading only ---------------------------------------------
def take(run: Run) -> None:
    env, book = run.env, run.runbook
    if env.rehearsal.host != "local://":
        raise PreconditionRefused(f"rehearsal.host {env.rehearsal.host}: only this machine (local://) is offered")
    if os.geteuid() != 0:
        raise PreconditionRefused(
            "the rehearsal builds network namespaces and Docker engines on this machine: it needs root",
            "run the rehearsal as root on the rehearsal host",
        )
    source = deployment_version(run)
    try:
        check_upgrade(source, book.target)
    except VersionError as e:
        raise PreconditionRefused(str(e), "follow the documented upgrade path (omsup path FROM TO)") from e
    rule = rule_for(book.target)
    package = env.packages.get(book.target)
    if package is None or not os.path.isfile(package):
        raise PreconditionRefused(
            f"the installation package of {book.target} ({package or 'packages: has none'}) is not a file on this "
            "machine: the rehearsal loads it into the replica",
            f"set packages: {{'{book.target}': PATH}} to a path readable here (the same file the nodes load)",
        )
    server = run.metadb.server()
    family = metadb_engine(server["version"], server["comment"])[0]
    if env.rehearsal.metadb is None and family != "OceanBase":
        raise PreconditionRefused(
            f"the MetaDB is {family} {server['version']}: the rehearsal loads its dumps into a scratch server of the "
            "same engine family, and starts one of its own for OceanBase only (a private seekdb)",
            "name a server the rehearsal may write (never production's MetaDB): rehearsal.metadb: {host, port, user, "
            "password} in the environment file",
        )
    scratch = _check_scratch(run, server) if env.rehearsal.metadb is not None else {"server": "a private seekdb"}
    nodes: dict[str, dict[str, Any]] = {}
    configs: dict[str, dict[str, Any]] = {}
    for n in env.nodes:  # the upgrade's own reading of the old containers (and its checks), changing nothing
        nf = inspect_old(run, n)
        configs[n.name] = read_config(run, n, nf.binds)
        nodes[n.name] = {
            "ip": n.ip,
            "image_id": nf.image_id,
            "image": nf.image,
            "binds": nf.binds,
            "user_env": nf.user_env,
        }
    ids = {v["image_id"] for v in nodes.values()}
    if len(ids) != 1:
        raise PreconditionRefused(f"the old containers run different images: {sorted(map(str, ids))}")
    if run.plan:  # --plan: the checks above, nothing taken (no dump, no saved image)
        run.evidence(
            "what the rehearsal would take",
            {
                "nodes": nodes,
                "package": package,
                "metadb": server["version"],
                "databases": env.databases(),
                "scratch_metadb": scratch,
            },
        )
        return
    rid = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")  # this rehearsal (its record is in memory: reads only)
    rh = Path(env.rehearsal_dir) / rid
    (rh / "dumps").mkdir(parents=True, mode=0o700)
    short = lacks(Host("local://", "rehearsal host"), str(rh), len(env.nodes))
    if short and not env.rehearsal.below_requirements_reason:
        raise PreconditionRefused(
            f"this machine lacks what the vendor asks of an OMS node for a replica of {len(env.nodes)} node(s): "
            + "; ".join(short)
            + " (oms-doc: Memory and disk requirements)",
            "rehearse on a machine that has them (rehearsal.host), or say why this one will do: "
            "rehearsal.below_requirements_reason: <why> in the environment file (recorded, warned about)",
        )
    if short:
        run.warn(
            f"the rehearsal host lacks {'; '.join(short)}: rehearsed anyway ({env.rehearsal.below_requirements_reason})"
        )
    here = Host("local://", "rehearsal host")
    set_back_noted(run, Path(env.rehearsal_dir).glob(f"*/{OB_NOTE}"))  # what a killed rehearsal left raised
    run.live("rehearsal: dumping rm, cm and every cm_hb from the MetaDB (reads only)")
    dumps = {db: _dump(run, here, rh, db) for _, db in env.databases()}
    dumped_at = utc_now()
    first = env.nodes[0].name
    image_id = str(next(iter(ids)))
    run.live(f"rehearsal: saving image {image_id[:19]} from {first}'s engine")
    image_tar = str(rh / "old-image.tar")
    image_size = run.engines[first].save_image(image_id, image_tar)
    run.live(f"rehearsal: hashing {package}")
    # the host's one way of hashing a file: the same reading --rehearsal compares on node 1 (follow_rehearsal)
    package_facts = here.file_facts(package)
    if package_facts is None:
        raise PreconditionRefused(f"{package} could not be hashed on this machine (neither openssl nor sha256sum?)")
    identities = {
        "old_image_id": image_id,
        "old_image_size": image_size,
        "package": package,
        "package_sha256": package_facts["sha256"],
        "metadb": {"version": server["version"], "comment": server["comment"]},
        "metadb_time_zone": server["time_zone"],
        "dumped_at": dumped_at,
        "dumps": dumps,
    }
    run.scratch["rehearsal.configs"] = configs  # secrets inside: never recorded
    with run.record.change() as f:
        f.rehearsal = {
            "id": rid,
            "dir": str(rh),
            "source": str(source),
            "target": str(book.target),
            "upgrade_runbook": rule.runbook,
            "rollback_runbook": rule.rollback,
            "identities": identities,
            "host_short_of": short,
            "scratch_metadb": scratch,
            "nodes": nodes,
            "image_tar": image_tar,
        }
    run.evidence("what the rehearsal took (identities)", identities)


def _check_scratch(run: Run, production: dict[str, Any]) -> dict[str, Any]:
    """The scratch server the user named (rehearsal.metadb), read before anything is written to it: reachable, not
    production's MetaDB, of the MetaDB's engine family, in its time zone (by the clocks' offset from UTC: the
    runbooks compare the nodes' clocks with the MetaDB's), and holding none of the databases the replica needs (a
    server that does is production's, or holds what a kept replica left: nothing is written over)."""
    env = run.env
    named = env.rehearsal.metadb
    assert named is not None
    where = f"rehearsal.metadb {named.host}:{named.port}"
    if (named.host, named.port) == (env.metadb.host, env.metadb.port):
        raise PreconditionRefused(f"{where} is production's MetaDB (metadb:)", "name a server for rehearsals")
    scratch = MetaDB(named)
    try:
        seen = scratch.server()
        existing = scratch.existing_databases()
    except OmsupError as e:
        raise PreconditionRefused(
            f"{where}, the scratch MetaDB: {e.message}", "check its address, user and password (rehearsal.metadb)"
        ) from None
    want = metadb_engine(production["version"], production["comment"])[0]
    got = metadb_engine(seen["version"], seen["comment"])[0]
    if got != want:
        raise PreconditionRefused(
            f"{where} is {got} {seen['version']}; the MetaDB is {want} {production['version']}: the replica's "
            "dumps load into the same engine family",
            f"name a {want} server",
        )
    offset = {
        k: round((v["now"] - v["utc"]).total_seconds() / 60) for k, v in (("scratch", seen), ("prod", production))
    }
    if offset["scratch"] != offset["prod"]:
        raise PreconditionRefused(
            f"{where} keeps its clock at UTC{offset['scratch']:+d} min ({seen['time_zone']}), the MetaDB at "
            f"UTC{offset['prod']:+d} min ({production['time_zone']}): the runbooks on the replica compare the "
            "nodes' clocks with it",
            "name a server in the MetaDB's time zone (or set its time_zone so)",
        )
    taken = sorted({db for _, db in env.databases()} & existing)
    if taken:
        raise PreconditionRefused(
            f"{where} holds {', '.join(taken)} already: production's MetaDB itself, or what a replica kept with "
            "--keep-replica left; the rehearsal writes over nothing",
            "drop them there if they are a kept replica's (DROP DATABASE ...), or name another server",
        )
    return {
        "server": f"{named.host}:{named.port}",
        "engine": got,
        "version": seen["version"],
        "time_zone": seen["time_zone"],
    }


def _dump(run: Run, here: Host, rh: Path, db: str) -> dict[str, Any]:
    """One database's dump, within the tenant's current timeouts: production's OMS is running, and its sessions get
    the tenant's global values. On OceanBase, a dump that runs out of them (error 4012, or the transaction's: the
    ob_dump_timeouts assumption) is taken again with the timeouts raised and set back right after, as the backup
    step does (its code), the old values also noted in the rehearsal's folder for a killed rehearsal's successor."""
    folder, dest = str(rh / "dumps"), str(rh / "dumps" / f"{db}.sql")
    try:
        size, sha = run.metadb.dump(here, folder, db, dest)
        return {"path": dest, "size": size, "sha256": sha, "timeouts_raised": False}
    except BackupProblem as e:
        # the timeout's own words, or a "complete" dump without the tables: what MariaDB's mysqldump writes when
        # the session's ob_query_timeout runs out while it lists them (it prints nothing then; seen on seekdb)
        if not ((OB_TIMED_OUT.search(e.message) or isinstance(e, DumpLacksTables)) and run.metadb.is_oceanbase()):
            raise
        os.rename(dest + ".partial", dest + ".timed-out")  # kept for a look; the dump never writes over a file
        run.live(f"rehearsal: the dump of {db} ran out of the tenant's timeouts; again, with them raised for it")
        run.evidence(f"the dump of {db} within the tenant's timeouts", e.message)
    with long_dump_sessions(run, note=rh / OB_NOTE):
        size, sha = run.metadb.dump(here, folder, db, dest)
    return {"path": dest, "size": size, "sha256": sha, "timeouts_raised": True}


# -- step 1: the replica -----------------------------------------------------------------------------------------
def _mapped_config(cfg: dict[str, Any], ips: dict[str, str], meta: dict[str, Any]) -> dict[str, Any]:
    out = dict(cfg)
    out.update(meta)
    for key in ("cm_url",):
        if isinstance(out.get(key), str):
            for old, new in ips.items():
                out[key] = out[key].replace(f"//{old}:", f"//{new}:")
    if isinstance(out.get("cm_nodes"), list):
        out["cm_nodes"] = [ips.get(str(x), x) for x in out["cm_nodes"]]
    return out


def build(run: Run) -> None:
    env = run.env
    rf = run.facts.rehearsal
    assert rf is not None
    rh = Path(rf["dir"])
    net = _net(run)
    here = Host("local://", "rehearsal host")
    hub = NetnsHost(net.hub, f"replica hub {net.hub}")
    ips = {n.ip: net.ip(i) for i, n in enumerate(env.nodes, start=1)}
    pids: list[int] = []
    containers: list[Engine] = []
    named = env.rehearsal.metadb  # a scratch server the user named (else a private seekdb in the hub)
    created: list[str] = []  # the databases the rehearsal made on it (dropped with the replica)

    def teardown() -> None:
        if run.scratch.get("rehearsal.torn_down"):
            return
        run.scratch["rehearsal.torn_down"] = True
        if run.keep_replica:
            run.live(f"rehearsal: the replica is kept (--keep-replica): namespaces {net.hub}, {net.ns(1)} ...")
            return
        for eng in containers:
            remove_container(eng, env.container)
            eng.close()
        for pid in reversed(pids):
            net.stop_daemon(pid)
        for i in range(1, len(env.nodes) + 1):
            unmount_engine(here, net.exec_root(i), str(rh / f"n{i}" / "data"))
        if named is not None and created:  # only what it made: the check before refused any that existed
            MetaDB(named).script(
                here, str(rh / "tmp"), "".join(f"DROP DATABASE IF EXISTS {quote_ident(db)}; " for db in created),
                "drop the replica's databases on the scratch MetaDB",
            )  # fmt: skip
        left = net.destroy()
        remove_replica_files(here, net, str(rh))
        if left:
            run.live(f"WARNING: rehearsal: namespaces left: {', '.join(left)} (ip netns del NAME)")
        with run.record.change() as f:
            assert f.rehearsal is not None
            f.rehearsal["replica_removed"] = not left

    run.on_close(teardown)  # whatever happens; the last step calls it first, so that rehearsal.json says so
    run.scratch["rehearsal.teardown"] = teardown
    run.live(f"rehearsal: replica network {net.hub} ({net.hub_ip}/24) and {len(env.nodes)} node namespaces")
    net.create()
    dbs = [db for _, db in env.databases()]
    if named is None:
        clone = rh / "clone"
        clone.mkdir(mode=0o700)
        pids.append(
            net.start_daemon(
                net.hub, seekdb_argv(seekdb_binary(env.rehearsal.seekdb), str(clone), CLONE_PORT),
                str(rh / "clone.log"), str(rh / "clone.pid"),
            )
        )  # fmt: skip
        if not wait_sql(hub, CLONE_PORT, 120):
            raise PreconditionRefused(f"the scratch MetaDB did not answer within 120 s (its log: {clone}/log/)")
        user, password = CLONE_USER, secrets.token_urlsafe(18)
        register(password)  # the scratch MetaDB's password: masked wherever it would show
        root = MetaDB(MetaDBConfig("127.0.0.1", CLONE_PORT, "root", Secret("rehearsal scratch root", ""), "", ""))
        tz = str(rf["identities"]["metadb_time_zone"])
        prepare_clone(root, hub, str(rh / "tmp"), tz, user, password, dbs)
        clone_db = MetaDB(
            MetaDBConfig(net.hub_ip, CLONE_PORT, user, Secret("rehearsal scratch", password), env.metadb.rm, ""),
            oceanbase=True,  # a seekdb; reached from the hub's namespace only (its restore needs to know)
        )
        loader: Host = hub
    else:  # the server the user named: the databases made there, the replica reaching it through the relay alone
        user, password, clone_db, loader = named.user, named.password.value, MetaDB(named), here
        _check_scratch(run, run.metadb.server())  # again: nothing may have appeared on it since the take
        for db in dbs:  # one at a time: what was made is known whatever fails
            clone_db.script(
                here, str(rh / "tmp"), f"CREATE DATABASE {quote_ident(db)} DEFAULT CHARACTER SET utf8mb4",
                f"create {db} on the scratch MetaDB",
            )  # fmt: skip
            created.append(db)
        pids.append(net.start_relay(CLONE_PORT, (named.host, named.port), str(rh / "relay.log"), str(rh / "relay.pid")))
    run.live("rehearsal: loading the dumps into the scratch MetaDB")
    for db in dbs:
        clone_db.restore(loader, str(rh / "tmp"), db, rf["identities"]["dumps"][db]["path"])
    map_addresses(clone_db, loader, str(rh / "tmp"), env.metadb.rm, env.metadb.cm, ips)
    secrets_dir = rh / "secrets"
    secrets_dir.mkdir(mode=0o700)
    _private_file(secrets_dir / "metadb", password)
    _private_file(secrets_dir / "console", env.console.password.value)
    configs = run.scratch["rehearsal.configs"]
    tls: dict[str, tuple[str, str]] = {}
    ca_file = None
    if env.console.scheme == "https":  # the replica's own certificates at the documented mounts (make_tls)
        ca_file, tls = make_tls(here, str(rh / "tls"), [net.ip(i) for i in range(1, len(env.nodes) + 1)])
    nodes_out = []
    for i, n in enumerate(env.nodes, start=1):
        nd = rh / f"n{i}"
        for sub in ("conf", "logs", "store", "run"):
            (nd / sub).mkdir(parents=True, mode=0o700)
        cfg = _mapped_config(
            configs[n.name],
            ips,
            {"oms_meta_host": net.hub_ip, "oms_meta_port": CLONE_PORT, "oms_meta_user": user,
             "oms_meta_password": password},
        )  # fmt: skip
        _private_file(nd / "conf" / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        argv, url = net.engine_argv(str(rh), i, env.rehearsal.dockerd_args)
        pids.append(net.start_daemon(net.ns(i), argv, str(nd / "dockerd.log"), str(nd / "dockerd.pid.self")))
        nodes_out.append({"name": n.name, "ip": net.ip(i), "host": "local://", "docker": url, "dir": str(nd)})
    engines = []
    for i, n in enumerate(env.nodes, start=1):
        sock = Path(nodes_out[i - 1]["docker"].removeprefix("unix://"))
        deadline = time.monotonic() + 60
        while not sock.exists():
            if time.monotonic() > deadline:
                raise ContainerProblem(f"replica engine of {n.name} did not start (its log: {rh}/n{i}/dockerd.log)")
            time.sleep(0.2)
        eng = Engine(nodes_out[i - 1]["docker"], f"replica {n.name}", here)
        deadline = time.monotonic() + 60
        while True:
            try:
                eng.ping()
                break
            except ContainerProblem:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        engines.append(eng)
    run.live("rehearsal: loading the old image into each replica engine")
    for i, (n, eng) in enumerate(zip(env.nodes, engines, strict=True), start=1):
        eng.load_archive(rf["image_tar"])
        if eng.image_id(rf["identities"]["old_image_id"]) is None:
            raise ContainerProblem(
                f"replica {n.name}: the loaded image has not the ID {rf['identities']['old_image_id']}"
            )
        spec_binds = []
        nd = Path(nodes_out[i - 1]["dir"])
        for b in rf["nodes"][n.name]["binds"]:
            target = bind_target(b)
            if target == CONFIG_TARGET:
                spec_binds.append(f"{nd / 'conf' / 'config.yaml'}:{target}")
            elif target in DATA_TARGETS:
                spec_binds.append(f"{nd / Path(target).name}:{target}")
        if tls:  # doc 003/004: -v <crt>:/etc/pki/nginx/oms_server.crt -v <key>:/etc/pki/nginx/oms_server.key
            spec_binds += [f"{src}:{dst}" for src, dst in zip(tls[net.ip(i)], CERT_TARGETS, strict=True)]
        spec = ContainerSpec(
            name=env.container,
            image=rf["nodes"][n.name]["image"] or rf["identities"]["old_image_id"],
            binds=tuple(spec_binds),
            host_ip=net.ip(i),
            extra_env=tuple(sorted(rf["nodes"][n.name]["user_env"].items())),
        )
        eng.run(spec)
        containers.append(eng)
    served_alone = {}
    source_release = release_of(Version.parse(rf["source"]))
    for i, (n, eng) in enumerate(zip(env.nodes, engines, strict=True), start=1):
        port = int(configs[n.name].get("nginx_server_port") or 8089)
        url = f"{env.console.scheme}://{net.ip(i)}:{port}/oms/health"
        ok, said = wait_healthy(hub, url, 45, ca_file)
        served_alone[n.name] = ok
        if not ok:  # the vendor runs docker_init.sh again (doc 004's recovery, the hot rollback): safe on the clone
            run.live(f"rehearsal: {n.name}'s console is not healthy ({said}); running docker_init.sh once")
            rc, _ = Oms(eng, env.container).run_init(source_release.init_script)
            ok, said = wait_healthy(hub, url, HEALTH_WAIT_S, ca_file)
            if not ok:
                raise ContainerProblem(
                    f"replica {n.name}: the old release does not serve on the clone (init exit {rc}; health: {said})",
                    f"look at {rh} (run again with --keep-replica to keep it)",
                )
    env_file = rh / "replica.env.yaml"
    regions = []
    for r in env.regions:
        regions.append(
            {
                "name": r.name,
                "cm_hb": r.cm_hb,
                "nodes": [
                    {k: v for k, v in x.items() if k != "dir"}
                    for x in nodes_out
                    if x["name"] in {m.name for m in r.nodes}
                ],
            }
        )
    doc = {
        "name": f"{env.name}-rehearsal",
        "container": env.container,
        "version": rf["source"],
        "packages": {rf["target"]: rf["identities"]["package"]},
        "metadb": {
            "host": net.hub_ip,
            "port": CLONE_PORT,
            "user": user,
            "password": {"file": str(secrets_dir / "metadb")},
            "rm": env.metadb.rm,
            "cm": env.metadb.cm,
            # production's reason for an engine the support table does not list holds for its clone
            **({"unlisted_engine_reason": env.metadb.unlisted_engine_reason} if env.metadb.unlisted_engine_reason else {}),
        },
        "regions": regions,
        "backup": {"host": "local://", "dir": str(rh / "backups")},
        "ha": {"perceive_store_client_checkpoint": env.ha.perceive_store_client_checkpoint,
               "refetch_margin_min": env.ha.refetch_margin_min},
        "console": {"scheme": env.console.scheme, "user": env.console.user,
                    "password": {"file": str(secrets_dir / "console")}, **({"ca_file": ca_file} if ca_file else {})},
        "state_dir": str(rh / "state"),
        "work_dir": str(rh / "work"),
    }  # fmt: skip
    (rh / "backups").mkdir(mode=0o700)
    _private_file(env_file, yaml.safe_dump(doc, sort_keys=False))
    replica = {
        "network": {"hub": net.hub, "hub_ip": net.hub_ip, "nodes": {n["name"]: n["ip"] for n in nodes_out}},
        "address_mapping": {"config.yaml": "oms_meta_host, oms_meta_port, oms_meta_user, cm_url, cm_nodes",
                            "metadata": ADDRESS_TABLES, "ips": ips},
        "env_file": str(env_file),
        "old_release_served_without_init": served_alone,
        "https": "the replica's own certificates at the documented mounts, signed by a CA made for this rehearsal "
                 "(production's certificates and keys are not copied)" if tls else None,
    }  # fmt: skip
    with run.record.change() as f:
        assert f.rehearsal is not None
        f.rehearsal["replica"] = replica
    run.evidence("the replica", replica)


# -- steps 2 and 3: the rehearsed runbooks, inside the replica's hub ----------------------------------------------
def _in_hub(run: Run, name: str) -> tuple[int, str, float, Path | None]:
    """Runbook ``name`` (a neighbour of this rehearsal's) run inside the replica's hub with the replica's
    environment file: its exit code, output, seconds and run folder (the newest with a summary)."""
    rf = run.facts.rehearsal
    assert rf is not None and run.runbook.folder is not None
    reports = Path(rf["dir"]) / "reports"
    hub = NetnsHost(rf["replica"]["network"]["hub"], "replica hub")
    folder = Path(run.runbook.folder).parent
    t0 = time.monotonic()
    rc, output = run_runbook(hub, str(folder.parent), str(folder / name), rf["replica"]["env_file"], str(reports))
    runs = sorted(p for p in reports.glob(f"{name}-*") if (p / "summary.json").exists())
    return rc, output, round(time.monotonic() - t0, 1), runs[-1] if runs else None


def _read_json(path: Path | None) -> dict[str, Any]:
    return json.loads(path.read_text()) if path is not None and path.exists() else {}


def _rehearse(run: Run, which: str) -> None:
    rf = run.facts.rehearsal
    assert rf is not None
    name = rf[f"{which}_runbook"]
    run.live(f"rehearsal: {name} on the replica (inside its hub {rf['replica']['network']['hub']})")
    rc, output, seconds, folder = _in_hub(run, name)
    summary = _read_json(folder / "summary.json" if folder else None)
    ledger = _read_json(folder / "ledger.json" if folder else None)
    result = {
        "runbook": name,
        "exit_code": rc,
        "seconds": seconds,
        "run_folder": str(folder) if folder else None,
        "outcome": summary.get("outcome"),
        "steps": [
            {k: s.get(k) for k in ("number", "title", "status", "seconds", "error")} for s in summary.get("steps", [])
        ],
        "times": summary.get("times"),
        "warnings": summary.get("warnings", []),
    }
    run.scratch[f"rehearsal.{which}.summary"] = summary
    run.scratch[f"rehearsal.{which}.ledger"] = ledger
    with run.record.change() as f:
        assert f.rehearsal is not None
        f.rehearsal[which] = result
    run.evidence(f"{name} on the replica", result)
    if rc != 0:
        tail = output.strip()[-1500:]
        raise ContainerProblem(
            f"{name} on the replica exited {rc} after {seconds} s: what production would meet. Its run folder: "
            f"{result['run_folder']}\n{tail}",
            "read the replica's run folder; fix the cause before running it on production",
        )


def _probe_replica(run: Run, which: str) -> None:
    """The probe (runbooks/probe, reads only) on the replica once the rehearsed runbook ended: what the product does
    where the documents are silent, as every reading the runbooks know shows it (docker logs and docker_init.sh's
    log, /oms/health, supervisorctl, ListProjects and DescribeProjectComponents, rm.oms_version and ha.config read
    again in a new session, cm.host and the moving heartbeats). A broken assumption on the replica is a warning here
    (the rehearsed runbook decided on the documented signals); the probe's run folder names it."""
    run.live(f"rehearsal: the probe on the replica after its {which}")
    rc, _, seconds, folder = _in_hub(run, "probe")
    assumptions = _read_json(folder / "summary.json" if folder else None).get("assumptions") or {}
    result = {
        "exit_code": rc,
        "seconds": seconds,
        "run_folder": str(folder) if folder else None,
        "assumptions": assumptions,
    }
    with run.record.change() as f:
        assert f.rehearsal is not None
        f.rehearsal[f"probe_after_{which}"] = result
    run.evidence(f"the probe on the replica after its {which}", result)
    broken = sorted(k for k, v in assumptions.items() if v.get("result") == "BROKEN")
    if rc != 0:
        run.warn(
            f"the probe on the replica after its {which} exited {rc}"
            + (f": {', '.join(broken)} did not hold" if broken else "")
            + f" (its run folder: {result['run_folder']})"
        )


def rehearse_upgrade(run: Run) -> None:
    _rehearse(run, "upgrade")
    _probe_replica(run, "upgrade")


def rehearse_rollback(run: Run) -> None:
    _rehearse(run, "rollback")
    _probe_replica(run, "rollback")


# -- step 4: what it observed ----------------------------------------------------------------------------------
def observe(run: Run) -> None:
    rf = run.facts.rehearsal
    assert rf is not None
    up_summary = run.scratch.get("rehearsal.upgrade.summary", {})
    up_facts = (run.scratch.get("rehearsal.upgrade.ledger") or {}).get("facts", {})
    down_facts = (run.scratch.get("rehearsal.rollback.ledger") or {}).get("facts", {})
    attempts = {
        node: [
            {
                "rc": a.get("rc"),
                "seconds": _seconds(a.get("started"), a.get("ended")),
                "output_tail": (a.get("output") or "")[-300:],
                "flag": a.get("flag"),
                "oms_version_before": a.get("oms_version_before"),
                "oms_version_after": a.get("oms_version_after"),
            }
            for a in tries
        ]
        for node, tries in (up_facts.get("init_outputs") or {}).items()
    }
    after = (up_summary.get("oms_version") or {}).get("after")
    observed = {
        "init": attempts,
        "init_flag_written": any(a["flag"] for tries in attempts.values() for a in tries),
        "oms_version": {
            "before": (up_summary.get("oms_version") or {}).get("before"),
            "after": after,
            "names_the_target": bool(after) and rf["target"] in str(after),
        },
        "consoles_started_by_hand": up_facts.get("consoles_started") or [],
        "ha_before": up_facts.get("ha_before"),
        "refetch": up_facts.get("refetch"),
        "servers": up_summary.get("servers"),
        "projects_before": up_facts.get("projects_before"),
        "projects_after": up_facts.get("projects_after"),
        "warnings": up_summary.get("warnings", []),
    }
    for which in ("upgrade", "rollback"):  # the probe of the replica after each (see _probe_replica)
        rows = ((rf.get(f"probe_after_{which}") or {}).get("assumptions")) or {}
        seen = {k: v.get("seen", v.get("why")) for k, v in rows.items()}
        servers = seen["server_state"] if isinstance(seen.get("server_state"), dict) else {}
        ha = seen["ha_config"] if isinstance(seen.get("ha_config"), dict) else {}
        observed[f"after_{which}"] = {
            "start_line": seen.get("start_line"),
            "heartbeat_period_s": servers.get(HEARTBEAT_PERIOD),
            "heartbeat_age_s": servers.get("observed: heartbeat age by the MetaDB's clock (s)"),
            "servers": servers.get("servers"),
            "ha_config": ha.get("ha.config"),
            "programs": seen.get("supervisor"),
            "connectors": seen.get("connectors"),
            "projects": seen.get("list_projects"),
            "oms_version": seen.get("oms_version"),
            "init_flag": seen.get("init_flag"),
            "health": seen.get("health"),
            "assumptions": {k: v.get("result") for k, v in rows.items()},
        }
    observed["ha_as_written"] = _ha_as_written(
        run.env.ha.perceive_store_client_checkpoint, up_facts.get("refetch"), observed["after_upgrade"]["ha_config"]
    )
    ha = observed["ha_as_written"]
    if ha is not None and not ha["kept"]:
        run.warn(f"ha.config on the replica after its upgrade is not what the upgrade wrote: {ha['differ']}")
    teardown = run.scratch.get("rehearsal.teardown")
    if teardown is not None:
        teardown()
    out = {
        "rehearsal": rf["id"],
        "environment": run.env.name,
        "at": utc_now(),
        "source": rf["source"],
        "target": rf["target"],
        "upgrade_runbook": rf["upgrade_runbook"],
        "rollback_runbook": rf["rollback_runbook"],
        "identities": rf["identities"],
        "replica": rf.get("replica"),
        "observed": observed,
        "upgrade": rf.get("upgrade"),
        "rollback": rf.get("rollback"),
        "outage_seconds": ((up_summary.get("times") or {}).get("downtime_seconds")),
        "rollback_restored": down_facts.get("restored"),
        # the rollback's table-by-table comparison (its verify_restore step): every table's rows and digest after
        # the restore against the replica upgrade's backups of the clone, taken at its T1
        "rollback_comparison": {
            "verify_restore": next(
                (
                    st.get("status")
                    for st in (rf.get("rollback") or {}).get("steps", [])
                    if "restore" in str(st.get("title")).lower() and "verify" in str(st.get("title")).lower()
                ),
                None,
            ),
            "tables": {
                b.get("db"): {t: (v or {}).get("rows") for t, v in (b.get("tables") or {}).items()}
                for b in up_facts.get("backups") or []
            },
        },
        "replica_removed": (run.facts.rehearsal or {}).get("replica_removed"),
        "kept_replica": run.keep_replica,
    }
    with run.record.change() as f:
        assert f.rehearsal is not None
        f.rehearsal["observed"] = observed
        f.rehearsal["outage_seconds"] = out["outage_seconds"]
    path = Path(rf["dir"]) / "rehearsal.json"
    _private_file(path, json.dumps(out, indent=2, default=str))
    run.scratch["rehearsal.json"] = out
    run.evidence("rehearsal.json", out)
    run.live(f"rehearsal: {path} (outage on the replica: {out['outage_seconds']} s)")


def _ha_as_written(perceive: bool, refetch: Any, read: Any) -> dict[str, Any] | None:
    """What the rehearsed upgrade wrote into ha.config at its end (HA enabled again, with
    perceiveStoreClientCheckpoint or the refetch window: steps/ha.py) against ha.config as the probe read it
    afterwards, in a new session (the one public reading: no published API shows the system parameters): the keys
    that differ; None when the probe read nothing."""
    if not isinstance(read, dict):
        return None
    written: dict[str, Any] = {"enable": True}
    if perceive:
        written["perceiveStoreClientCheckpoint"] = True
    elif isinstance(refetch, dict) and refetch.get("set") is not None:
        written["refetchStoreIntervalMin"] = refetch["set"]
    differ = {k: {"written": v, "read": read.get(k)} for k, v in written.items() if read.get(k) != v}
    return {"written": written, "differ": differ, "kept": not differ}


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((parse_utc(end) - parse_utc(start)).total_seconds(), 1)


_ALL = frozenset({Touches.HOSTS, Touches.ENGINES, Touches.METADB, Touches.BACKUP})
REHEARSAL_TAKE = Step(
    "rehearsal_take", "Take what the rehearsal needs from the deployment (reads only)", take, _ALL, False
)
REHEARSAL_REPLICA = Step(
    "rehearsal_replica",
    "Build the replica: isolated namespaces, the scratch MetaDB from the dumps, the old image and containers",
    build,
    frozenset({Touches.HOSTS}),
    False,
    lambda run: [
        "on this machine: a hub namespace with "
        + (
            f"a relay to the scratch MetaDB {run.env.rehearsal.metadb.host}:{run.env.rehearsal.metadb.port} (the "
            "databases made there, dropped afterwards)"
            if run.env.rehearsal.metadb
            else "a private seekdb"
        )
        + f" holding the dumps, {len(run.env.nodes)} node "
        f"namespace(s) on {run.env.rehearsal.subnet}.0/24 each with its own dockerd, the old image loaded, config.yaml "
        "and the node addresses in the metadata mapped, the old containers started as the document starts them",
    ],
)
REHEARSE_UPGRADE = Step(
    "rehearse_upgrade",
    "Run the upgrade runbook on the replica",
    rehearse_upgrade,
    frozenset({Touches.HOSTS}),
    False,
    lambda run: [
        f"pytest runbooks/{run.runbook.upgrade_runbook} on the replica, inside its hub namespace; then runbooks/probe "
        "on the replica (reads only)"
    ],
)
REHEARSE_ROLLBACK = Step(
    "rehearse_rollback",
    "Run its rollback runbook on the replica",
    rehearse_rollback,
    frozenset({Touches.HOSTS}),
    False,
    lambda run: [
        f"pytest runbooks/{run.runbook.rollback_runbook} on the replica, inside its hub namespace; then runbooks/probe "
        "on the replica (reads only)"
    ],
)
REHEARSAL_OBSERVE = Step(
    "rehearsal_observe",
    "Write what the rehearsal observed (rehearsal.json)",
    observe,
    frozenset(),
    False,
    lambda run: ["remove the replica (not with --keep-replica); write rehearsal.json"],
)
