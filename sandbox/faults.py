"""Faults on demand, so the runbooks' failure paths are tested on real parts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from . import engines, facts, metadb, paths, sshd
from .procs import SandboxError

FAULTS = {
    "start-fail": "a node's new container fails to start (--node, --version: default every newer version)",
    "init-fail": "docker_init.sh fails on a node (--node, default every node)",
    "hot-init-fail": "docker_hot_update_init.sh fails half way on a node: rm migrated, no program started (--node)",
    "init-exit-zero": "docker_init.sh fails but exits 0 and writes no /root/init_flag.txt (--node)",
    "cm-update-fails": "the CM answers every updateByName with an error (--node, default every node)",
    "supervisor-stuck": "a program of a node's supervisord never gets RUNNING (--node, --program)",
    "program-crash": "a program of a node exits as soon as supervisord starts it (--node, --program: default oms_console)",
    "metadb-timezone": "the MetaDB answers in another time zone (+08:00, as a fresh OceanBase does)",
    "metadb-timezone-ok": "the MetaDB answers in the machine's time zone again",
    "metadb-grants": "the MetaDB user loses DROP and CREATE (a backup works, a restore could not)",
    "metadb-grants-ok": "the MetaDB user has every privilege again",
    "many-projects": "add --count projects (RELEASED), so ListProjects needs several pages",
    "project-suspended": "a running synchronization project is SUSPEND",
    "no-heartbeat": "a node stops heartbeating, so it turns Offline (--node)",
    "metadb-down": "the MetaDB stops",
    "metadb-up": "the MetaDB comes back",
    "disk-full": "the backup folder's filesystem fills up: its files stay, 12 KiB free",
    "disk-ok": "the backup folder is the real one again",
    "engine-down": "a node's Docker engine becomes unreachable (--node)",
    "engine-up": "a node's Docker engine is reachable again (--node)",
    "sshd-down": "a node's sshd stops (--node; sandbox up --ssh)",
    "sshd-up": "a node's sshd runs again (--node), with its own host key, its open sessions ended",
    "sshd-rekey": "a node's sshd comes back with another host key, its open sessions ended (--node)",
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


FILLER = ".sandbox-filler"


def _disk_full(folder: str) -> None:
    """The backup folder's filesystem is full: what is there stays (backups, a lock), nothing more fits.

    A small tmpfs over the folder, holding a copy of its content and filled but for 12 KiB: room
    for a lock and a client option file, not for a dump.
    """
    stash = paths.STATE_DIR / ".disk-full-stash"
    shutil.rmtree(stash, ignore_errors=True)
    shutil.copytree(folder, stash, symlinks=True)
    used = sum(p.stat().st_size for p in stash.rglob("*") if p.is_file())
    size_k = used // 1024 + 1024
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_k}k,mode=0700", "omsup-full", folder], check=True)
    shutil.copytree(stash, folder, symlinks=True, dirs_exist_ok=True)
    shutil.rmtree(stash)
    free = shutil.disk_usage(folder).free
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={folder}/{FILLER}", "bs=4k", f"count={max(0, free - 12 * 1024) // 4096}"],
        check=False,
        capture_output=True,
    )


def _disk_ok(folder: str) -> None:
    """Room again: the folder's content as it is now (what was written, what was removed) goes back."""
    stash = paths.STATE_DIR / ".disk-full-stash"
    shutil.rmtree(stash, ignore_errors=True)
    shutil.copytree(folder, stash, symlinks=True, ignore=shutil.ignore_patterns(FILLER))
    subprocess.run(["umount", folder], check=True)
    for p in Path(folder).iterdir():
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    shutil.copytree(stash, folder, symlinks=True, dirs_exist_ok=True)
    shutil.rmtree(stash)


def inject(
    name: str, node: str | None = None, version: str | None = None, program: str | None = None, count: int | None = None
) -> str:
    st = _state()
    if name == "start-fail":
        current = st["args"]["version"].removesuffix("-CE")
        versions = (
            [version.removesuffix("-CE")]
            if version
            else [v for v in facts.VERSIONS if facts.vkey(v) > facts.vkey(current)]
        )
        for n in _nodes(st, node):
            _edit(n, start_fail=versions)
    elif name == "hot-init-fail":
        for n in _nodes(st, node):
            _edit(n, hot_init_fail=True)
    elif name == "init-exit-zero":
        for n in _nodes(st, node):
            _edit(n, init_exit_zero=True)
    elif name == "cm-update-fails":
        for n in _nodes(st, node):
            _edit(n, cm_update_fails=True)
    elif name == "supervisor-stuck":
        for n in _nodes(st, node):
            _edit(n, supervisor_stuck={program or "oms_drc_cm": True})
    elif name == "program-crash":
        for n in _nodes(st, node):
            _edit(n, program_crash={program or "oms_console": True})
    elif name in ("metadb-timezone", "metadb-timezone-ok"):
        metadb.set_time_zone("+08:00" if name == "metadb-timezone" else None)
    elif name in ("metadb-grants", "metadb-grants-ok"):
        metadb.set_grants(full=name == "metadb-grants-ok")
    elif name == "many-projects":
        metadb.add_projects(count or 200)
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
            _disk_full(st["backups"])
    elif name == "disk-ok":
        if _backup_mounted(st):
            _disk_ok(st["backups"])
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
            if (sshd.ROOT / n["name"] / "sshd_config").exists() and f"HostKey {host_key}\n" not in (
                sshd.ROOT / n["name"] / "sshd_config"
            ).read_text():
                sshd.stop_node(n["name"], sessions=True)  # after sshd-rekey: the node's own key again
            sshd.start_node(n, host_key, client_key)
    elif name == "sshd-rekey":
        for n in _nodes(st, node):
            sshd.rekey(n, sshd.ROOT / "id_ed25519")
    elif name in ("project-not-realtime", "switchover-not-done", "projects-ok", "project-suspended"):
        metadb.set_projects(name.replace("project-", ""))
    elif name == "clear":
        for n in st["nodes"]:
            _edit(
                n,
                start_fail=None,
                init_fail=None,
                hot_init_fail=None,
                init_exit_zero=None,
                cm_update_fails=None,
                no_heartbeat=None,
                supervisor_stuck=None,
                program_crash=None,
            )
        if not metadb.running():
            metadb.start()
        inject("disk-ok")
        for n in st["nodes"]:
            engines.start_again(paths.node_paths(n["name"]))
        if st.get("ssh"):
            inject("sshd-up")
        metadb.set_projects("ok")
        metadb.set_time_zone(None)
        metadb.set_grants(full=True)
    else:
        raise SandboxError(f"unknown fault {name!r}; faults: {', '.join(FAULTS)}")
    return name
