"""Faults on demand, so the runbooks' failure paths are tested on real parts."""

from __future__ import annotations

import json
import subprocess

from omsup.versions import KNOWN_VERSIONS, Version

from . import engines, metadb, paths, sshd
from .procs import SandboxError

FAULTS = {
    "start-fail": "a node's new container fails to start (--node, --version: default every newer version)",
    "init-fail": "docker_init.sh fails on a node (--node, default every node)",
    "no-heartbeat": "a node stops heartbeating, so it turns Offline (--node)",
    "metadb-down": "the MetaDB stops",
    "metadb-up": "the MetaDB comes back",
    "disk-full": "the backup folder becomes a small filesystem with 12 KiB free",
    "disk-ok": "the backup folder is the real one again",
    "engine-down": "a node's Docker engine becomes unreachable (--node)",
    "engine-up": "a node's Docker engine is reachable again (--node)",
    "sshd-down": "a node's sshd stops (--node; sandbox up --ssh)",
    "sshd-up": "a node's sshd runs again (--node)",
    "project-not-realtime": "a synchronization project's incremental step is not real-time",
    "switchover-not-done": "a migration project's forward switchover is not done",
    "projects-ok": "every project back in a state the documents allow",
    "clear": "every fault above cleared",
}


def _state() -> dict:
    st = paths.load_state()
    if not st:
        raise SandboxError("no sandbox is up: run `python -m sandbox up` first")
    return st


def _nodes(st: dict, node: str | None) -> list[dict]:
    if node is None:
        return st["nodes"]
    found = [n for n in st["nodes"] if n["name"] == node]
    if not found:
        raise SandboxError(f"no node {node!r}; nodes: {', '.join(n['name'] for n in st['nodes'])}")
    return found


def _edit(node: dict, **changes) -> None:
    path = paths.node_paths(node["name"]).mounts["/home/admin/logs"] / ".sandbox-faults.json"
    try:
        cur = json.loads(path.read_text())
    except (OSError, ValueError):
        cur = {}
    for k, v in changes.items():
        if v is None:
            cur.pop(k, None)
        else:
            cur[k] = v
    path.write_text(json.dumps(cur))


def _backup_mounted(st: dict) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == st["backups"] for line in f)


def inject(name: str, node: str | None = None, version: str | None = None) -> str:
    st = _state()
    if name == "start-fail":
        current = Version.parse(st["args"]["version"])
        versions = [str(Version.parse(version))] if version else [str(v) for v in KNOWN_VERSIONS if v > current]
        for n in _nodes(st, node):
            _edit(n, start_fail=versions)
    elif name == "init-fail":
        for n in _nodes(st, node):
            _edit(n, init_fail=True)
    elif name == "no-heartbeat":
        for n in _nodes(st, node):
            _edit(n, no_heartbeat=True)
    elif name == "metadb-down":
        metadb.stop()
    elif name == "metadb-up":
        metadb.start()
    elif name == "disk-full":
        if not _backup_mounted(st):
            # a small filesystem over the backup folder, filled but for 12 KiB: room for the lock and
            # the client option file, not for a dump
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "omsup-full", st["backups"]], check=True)
            subprocess.run(["dd", "if=/dev/zero", f"of={st['backups']}/.sandbox-filler", "bs=4k",
                            f"count={(1024 - 12) // 4}"], check=True, capture_output=True)
    elif name == "disk-ok":
        if _backup_mounted(st):
            subprocess.run(["umount", st["backups"]], check=True)
    elif name == "engine-down":
        for n in _nodes(st, node):
            engines.stop_daemon_only(paths.node_paths(n["name"]))
    elif name == "engine-up":
        for n in _nodes(st, node):
            engines.start_again(paths.node_paths(n["name"]))
    elif name == "sshd-down":
        for n in _nodes(st, node):
            sshd.stop_node(n["name"])
    elif name == "sshd-up":
        host_key, client_key = sshd.ROOT / "host_ed25519", sshd.ROOT / "id_ed25519"
        for n in _nodes(st, node):
            sshd.start_node(n, host_key, client_key)
    elif name in ("project-not-realtime", "switchover-not-done", "projects-ok"):
        metadb.set_projects(name.replace("project-", ""))
    elif name == "clear":
        for n in st["nodes"]:
            _edit(n, start_fail=None, init_fail=None, no_heartbeat=None)
        if not metadb.running():
            metadb.start()
        inject("disk-ok")
        for n in st["nodes"]:
            engines.start_again(paths.node_paths(n["name"]))
        if st.get("ssh"):
            inject("sshd-up")
        metadb.set_projects("ok")
    else:
        raise SandboxError(f"unknown fault {name!r}; faults: {', '.join(FAULTS)}")
    return name
