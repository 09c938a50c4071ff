"""`up`, `status` and `down`: the whole local OMS CE deployment."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import docker.types
import yaml

from . import engines, facts, images, metadb, paths, sshd
from .procs import SandboxError


def normal(version: str) -> str:
    """``4.2.8-CE``, ``V4.2.8`` or ``4.2.8`` -> ``4.2.8``; a version the stand-in knows."""
    v = version.strip().lstrip("Vv").removesuffix("-CE").removesuffix("-ce")
    if v not in facts.VERSIONS:
        raise SandboxError(f"the stand-in knows versions {', '.join(facts.VERSIONS)}; saw {version!r}")
    return v


def layout(nodes: int, regions: int) -> tuple[list[dict], list[dict]]:
    """Regions and nodes: nodes split into contiguous blocks, one block per region."""
    if nodes < 1 or regions < 1 or regions > nodes:
        raise SandboxError(f"--nodes must be >= --regions >= 1 (saw nodes={nodes}, regions={regions})")
    if nodes > 40:
        raise SandboxError(f"--nodes at most 40 (saw {nodes})")
    per, extra = divmod(nodes, regions)
    out_regions, out_nodes, i = [], [], 0
    for r in range(regions):
        name = f"region{r + 1}"
        count = per + (1 if r < extra else 0)
        members = []
        for _ in range(count):
            i += 1
            ip = f"127.0.0.{paths.NODE_IP_BASE + i}"
            node = {
                "name": f"n{i}",
                "ip": ip,
                "region": name,
                "region_code": r,
                "cm_region": name if regions > 1 else "",
            }
            out_nodes.append(node)
            members.append(node)
        out_regions.append(
            {
                "name": name,
                "code": r,
                "cm_url": f"http://{members[0]['ip']}:{{cm_port}}",  # the port: config.yaml's (write_config)
                "nodes": [m["name"] for m in members],
            }
        )
    return out_regions, out_nodes


def targets_of(version: str) -> list[str]:
    """The versions a sandbox at ``version`` may be upgraded to: the documented cold upgrades, and the newest hot
    upgrade target from V4.2.1 on (OD 309.hot-upgrade.md)."""
    cold = [t for t, sources in facts.UPGRADES.items() if version in sources]
    newest = facts.HOT_TARGETS[-1]
    hot = [newest] if facts.vkey(facts.HOT_FROM) <= facts.vkey(version) < facts.vkey(newest) else []
    return cold + [h for h in hot if h not in cold]


def ports(variants: list[str]) -> dict:
    """The port keys config.yaml sets: none by default (8089 and 8088 apply), others with custom-ports."""
    return dict(facts.CUSTOM_PORTS) if "custom-ports" in variants else {}


def write_config(
    node: dict, region: dict, nodes: list[dict], names: dict, own_cm_nodes: bool, variants: list[str]
) -> None:
    """config.yaml as documented (oms-interfaces.md): shared per region, unless own_cm_nodes."""
    np_ = paths.node_paths(node["name"])
    members = [n["ip"] for n in nodes if n["region"] == region["name"]]
    extra = ports(variants)
    cfg = {
        "oms_meta_host": paths.METADB_HOST,
        "oms_meta_port": metadb.port(),
        "oms_meta_user": paths.METADB_USER,
        "oms_meta_password": metadb.password(),
        "drc_rm_db": names["rm"],
        "drc_cm_db": names["cm"],
        "drc_cm_heartbeat_db": names["cm_hb"][region["code"]],
        "cm_url": region["cm_url"].replace("{cm_port}", str(facts.cm_port(extra))),
        "cm_location": region["code"],
        "cm_region": node["cm_region"],
        "cm_region_cn": node["cm_region"],
        "cm_is_default": region["code"] == 0,
        "cm_nodes": [node["ip"]] if own_cm_nodes else members,
        "tsdb_enabled": False,
        **extra,
    }
    np_.data.mkdir(parents=True, exist_ok=True)
    for d in np_.mounts.values():
        d.mkdir(parents=True, exist_ok=True)
    # the behaviours the public sources leave open, as chosen for this sandbox (facts.VARIANTS)
    (np_.mounts["/home/admin/logs"] / facts.VARIANT_FILE).write_text(json.dumps(sorted(variants)))
    fd = os.open(np_.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False, allow_unicode=True)


def make_cert(node: dict) -> tuple[Path, Path]:
    np_ = paths.node_paths(node["name"])
    crt, key = np_.data / "oms" / "https_crt", np_.data / "oms" / "https_key"
    if not crt.exists():
        from .procs import run

        run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                f"/CN={node['ip']}",
                "-addext",
                f"subjectAltName=IP:{node['ip']}",
                "-keyout",
                str(key),
                "-out",
                str(crt),
            ]
        )
    return crt, key


def run_kwargs(node: dict, version: str, https: bool) -> dict:
    """doc 003/004: docker run -dit --net host -v <config.yaml>:/home/admin/conf/config.yaml -v <logs>:/home/admin/logs
    -v <store>:/home/ds/store -v <run>:/home/ds/run [-v <crt>:... -v <key>:...] -e OMS_HOST_IP=<ip>
    --privileged=true --pids-limit -1 --ulimit nproc=65535:65535 --name <container> <image>"""
    np_ = paths.node_paths(node["name"])
    binds = [f"{np_.config}:{facts.CONFIG_PATH}"] + [f"{src}:{dst}" for dst, src in np_.mounts.items()]
    environment = {"OMS_HOST_IP": node["ip"]}
    chosen = np_.mounts["/home/admin/logs"] / facts.VARIANT_FILE
    if chosen.exists() and json.loads(chosen.read_text()):
        # the variants in the container's environment as well: what copies a deployment's containers (its
        # environment, config.yaml and metadata, not its logs) copies the product's behaviour with them
        environment[facts.VARIANT_ENV] = ",".join(json.loads(chosen.read_text()))
    if https:
        crt, key = make_cert(node)
        binds += [f"{crt}:{facts.CERT}", f"{key}:{facts.KEY}"]
    return {
        "image": images.image_ref(version),
        "name": paths.CONTAINER_NAME,
        "detach": True,
        "tty": True,
        "stdin_open": True,
        "network_mode": "host",
        "volumes": binds,
        "environment": environment,
        "privileged": True,
        "pids_limit": -1,
        "ulimits": [docker.types.Ulimit(name="nproc", soft=65535, hard=65535)],
    }


def health(ip: str, https: bool, timeout: float = 2, port: int = facts.CONSOLE_PORT) -> dict:
    scheme = "https" if https else "http"
    ctx = ssl._create_unverified_context() if https else None
    with urllib.request.urlopen(f"{scheme}://{ip}:{port}/oms/health", timeout=timeout, context=ctx) as r:
        return json.load(r)


def wait_healthy(node: dict, https: bool, timeout: float = 90, port: int = facts.CONSOLE_PORT) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            if health(node["ip"], https, port=port)["data"]["healthy"]:
                return
        except Exception as e:
            last = str(e)
        time.sleep(0.25)
    client = engines.client(paths.node_paths(node["name"]))
    try:
        logs = client.containers.get(paths.CONTAINER_NAME).logs(tail=15).decode(errors="replace")
    except Exception as e:
        logs = str(e)
    raise SandboxError(
        f"node {node['name']} ({node['ip']}): /oms/health not healthy after {timeout:.0f}s "
        f"(last: {last})\n  container log:\n{logs}"
    )


def wait_settled(nodes: list[dict], names: dict, timeout: float = 60) -> None:
    """Up means settled: every supervisor program RUNNING and every host ONLINE in cm.host."""
    deadline = time.monotonic() + timeout
    ips = sorted(n["ip"] for n in nodes)
    while time.monotonic() < deadline:
        try:
            with metadb.root_conn(names["cm"]) as c, c.cursor() as cur:
                cur.execute("SELECT ip FROM host WHERE host_status='ONLINE'")
                online = sorted(r[0] for r in cur.fetchall())
            running = all(_supervisor_ok(n) for n in nodes)
            if online == ips and running:
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise SandboxError(f"the deployment did not settle in {timeout:.0f}s (programs RUNNING, hosts {ips} ONLINE)")


def _supervisor_ok(node: dict) -> bool:
    client = engines.client(paths.node_paths(node["name"]), timeout=10)
    try:
        return client.containers.get(paths.CONTAINER_NAME).exec_run(["supervisorctl", "status"]).exit_code == 0
    finally:
        client.close()


def _start_node(node: dict, version: str, package: Path, https: bool) -> None:
    np_ = paths.node_paths(node["name"])
    engines.start(np_)
    client = engines.client(np_)
    try:
        try:
            ctr = client.containers.get(paths.CONTAINER_NAME)
        except docker.errors.NotFound:
            try:
                client.images.get(images.image_ref(version))
            except docker.errors.ImageNotFound:
                images.load(np_, package)
            ctr = client.containers.run(**run_kwargs(node, version, https))
        if ctr.status != "running":
            ctr.start()
    finally:
        client.close()


def up(
    nodes: int,
    regions: int,
    version: str,
    heartbeat_rows: int,
    ssh: bool,
    env_file: str | None,
    own_cm_nodes: bool = False,
    https: bool = False,
    bulk_mb: int = 0,
    metadb_engine: str = "oceanbase",
    variants: list[str] | None = None,
    host_down_seconds: int | None = None,
) -> Path:
    v = normal(version)
    if metadb_engine not in metadb.ENGINES:
        raise SandboxError(f"--metadb is one of {', '.join(metadb.ENGINES)}; saw {metadb_engine!r}")
    variants = sorted(set(variants or []))
    unknown = [x for x in variants if x not in facts.VARIANTS]
    if unknown:
        raise SandboxError(f"unknown variant(s) {', '.join(unknown)}; the variants are {', '.join(facts.VARIANTS)}")
    if host_down_seconds is not None and not 3 <= host_down_seconds <= 3600:
        raise SandboxError(f"--host-down-seconds is from 3 to 3600; saw {host_down_seconds}")
    ha = dict(facts.HA_CONFIG)
    if "ha-full" in variants:
        ha.update(facts.HA_MODIFIED_KEYS)
    if host_down_seconds is not None:  # as an operator sets it (System Parameters), shorter for tests
        ha[facts.HOST_DOWN_KEY] = host_down_seconds
    args = {
        "nodes": nodes,
        "regions": regions,
        "version": facts.ce(v),
        "heartbeat_rows": heartbeat_rows,
        "ssh": ssh,
        "own_cm_nodes": own_cm_nodes,
        "https": https,
        "bulk_mb": bulk_mb,
        "metadb": metadb_engine,
        "variants": variants,
        "host_down_seconds": host_down_seconds,
    }
    current = paths.load_state()
    if current and current.get("args") != args:
        raise SandboxError(
            f"a sandbox with other arguments is up ({current.get('args')}); run `python -m sandbox down` first"
        )
    region_list, node_list = layout(nodes, regions)
    paths.STATE_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.STATE_DIR, 0o700)
    wanted = [v, *targets_of(v)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        fut_pk = pool.submit(images.ensure_packages, wanted)
        metadb.start(metadb_engine)
        console_password = paths.secret("console_password").read_text(encoding="utf-8")
        names = metadb.seed(v, region_list, node_list, heartbeat_rows, console_password, bulk_mb, ha)
        pkgs = fut_pk.result()
    placed = {facts.ce(ver): images.place_package(p, ver) for ver, p in pkgs.items()}
    for n in node_list:
        region = next(r for r in region_list if r["name"] == n["region"])
        write_config(n, region, node_list, names, own_cm_nodes, variants)
    port = facts.console_port(ports(variants))
    with ThreadPoolExecutor(max_workers=max(1, len(node_list))) as pool:
        list(pool.map(lambda n: _start_node(n, v, pkgs[v], https), node_list))
        list(pool.map(lambda n: wait_healthy(n, https, port=port), node_list))
    wait_settled(node_list, names)
    ssh_info = sshd.start_all(node_list) if ssh else {}
    backups = paths.STATE_DIR / "backups"
    backups.mkdir(exist_ok=True, mode=0o700)
    state = {
        "args": args,
        "regions": region_list,
        "nodes": node_list,
        "metadb": {
            "engine": metadb_engine,
            "host": paths.METADB_HOST,
            "port": metadb.port(),
            "user": paths.METADB_USER,
            **names,
        },
        "packages": {ver: str(p) for ver, p in placed.items()},
        "ssh": ssh_info,
        "backups": str(backups),
    }
    env_path = Path(env_file) if env_file else paths.STATE_DIR / "sandbox.env.yaml"
    state["env_file"] = str(env_path.resolve())
    write_env_file(env_path, state)
    paths.save_state(state)
    return env_path


def write_env_file(path: Path, state: dict) -> None:
    """The environment file for the runbooks, in the format a user writes for production."""
    ssh = state.get("ssh") or {}
    https = state["args"].get("https")
    regions = []
    for r in state["regions"]:
        nodes = []
        for n in state["nodes"]:
            if n["region"] != r["name"]:
                continue
            entry = {"name": n["name"], "ip": n["ip"]}
            if n["name"] in ssh:
                entry["host"] = ssh[n["name"]]["host"]
                entry["docker"] = ssh[n["name"]]["docker"]
            else:
                entry["host"] = "local://"
                entry["docker"] = paths.node_paths(n["name"]).docker_url
            nodes.append(entry)
        regions.append({"name": r["name"], "cm_hb": state["metadb"]["cm_hb"][r["code"]], "nodes": nodes})
    first_host = regions[0]["nodes"][0]["host"]
    meta = {
        "host": paths.METADB_HOST,
        "port": state["metadb"]["port"],
        "user": paths.METADB_USER,
        "password": {"file": str(paths.secret("metadb_password"))},
        "rm": state["metadb"]["rm"],
        "cm": state["metadb"]["cm"],
    }
    if state["metadb"]["engine"] == "mariadb":  # not a documented MetaDB engine: said, with the reason
        meta["unlisted_engine_reason"] = (
            "the local sandbox's second MetaDB engine (MariaDB 10.11), to run the runbooks on two SQL engines"
        )
    doc = {
        "name": "sandbox",
        "container": paths.CONTAINER_NAME,
        "version": state["args"]["version"],
        "packages": state["packages"],
        "metadb": meta,
        "regions": regions,
        "backup": {"host": first_host, "dir": state["backups"]},
        "ha": {"perceive_store_client_checkpoint": False, "refetch_margin_min": 5},
        "console": {  # no port: the runbooks read config.yaml's nginx_server_port (8089 when it sets none)
            "scheme": "https" if https else "http",
            "user": paths.CONSOLE_USER,
            "password": {"file": str(paths.secret("console_password"))},
        },
        "state_dir": str(paths.STATE_DIR / "ledgers"),
        # a rehearsal's replica engines need the runtime the sandbox's own engines use on this machine (no
        # capability beyond the machine's: --privileged containers fail with plain runc here)
        "rehearsal": {
            "dockerd_args": [
                "--add-runtime",
                f"sandbox-runc={paths.node_paths(state['nodes'][0]['name']).root / 'runc'}",
                "--default-runtime",
                "sandbox-runc",
            ],
            "below_requirements_reason": "the local sandbox: its stand-in OMS needs a fraction of a real node's "
            "cores, memory and disk",
        },
    }
    if https:  # the nodes' self-signed certificates are the private CA to trust
        doc["console"]["ca_file"] = str(ca_bundle(state))
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# OMS CE deployment: the local sandbox (written by `python -m sandbox up`).\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))


def ca_bundle(state: dict) -> Path:
    bundle = paths.STATE_DIR / "https-ca.pem"
    bundle.write_text("".join(make_cert(n)[0].read_text() for n in state["nodes"]))
    return bundle


def status() -> dict:
    st = paths.load_state()
    if not st:
        return {"up": False}
    out = {"up": True, "env_file": st["env_file"], "args": st["args"]}
    meta = {
        **st["metadb"],
        "password": metadb.password(),
        "root_password": metadb.root_password(),
        "running": metadb.running(),
    }
    try:
        meta["version"] = metadb.version()  # VERSION(), e.g. 5.7.25-OceanBase seekdb-v1.4.0.0
    except Exception as e:
        meta["version"] = None
        meta["error"] = str(e).splitlines()[0][:200]
    out["metadb"] = meta
    https = st["args"].get("https")
    out["console"] = {
        "user": paths.CONSOLE_USER,
        "password": paths.secret("console_password").read_text("utf-8"),
        "port": facts.console_port(ports(st["args"].get("variants") or [])),
        "cm_port": facts.cm_port(ports(st["args"].get("variants") or [])),
        "scheme": "https" if https else "http",
    }
    out["variants"] = st["args"].get("variants") or []
    nodes = []
    for n in st["nodes"]:
        np_ = paths.node_paths(n["name"])
        entry = {
            "name": n["name"],
            "region": n["region"],
            "ip": n["ip"],
            "docker_host": np_.docker_url,
            "container": paths.CONTAINER_NAME,
            "image": None,
            "running": False,
        }
        if n["name"] in (st.get("ssh") or {}):
            entry["ssh"] = st["ssh"][n["name"]]
        try:
            c = engines.client(np_, timeout=5)
            ctr = c.containers.get(paths.CONTAINER_NAME)
            entry["image"] = (ctr.image.tags or [ctr.image.id])[0]
            entry["running"] = ctr.status == "running"
            c.close()
        except Exception as e:
            entry["error"] = str(e).splitlines()[0][:200]
        nodes.append(entry)
    out["nodes"] = nodes
    out["packages"] = st["packages"]
    out["backups"] = st["backups"]
    return out


def down() -> None:
    st = paths.load_state() or {}
    if paths.STATE_DIR.exists():
        sshd.stop_all(st.get("nodes") or [])
        node_root = paths.STATE_DIR / "nodes"
        names = [p.name for p in node_root.iterdir()] if node_root.exists() else []
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            list(pool.map(lambda name: engines.stop(paths.node_paths(name)), names))
        builder = paths.STATE_DIR / "builder"
        if builder.exists():
            engines.stop(paths.NodePaths("builder", builder))
        metadb.stop()
        engines.unmount_below(paths.STATE_DIR)
        shutil.rmtree(paths.STATE_DIR)
