"""One Docker engine per sandbox node: its own socket, data-root, exec-root and pid file.

Flags from shared/machine-notes.md: no iptables, no bridge (containers use --net host),
overlay2.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import docker

from .paths import NodePaths
from .procs import SandboxError, pid_alive, start_daemon, stop_pid, wait_for

RUNC_WRAPPER = Path(__file__).resolve().parent / "runc-wrapper"
# The engine calls its runtime for every create, start, state, kill, delete and exec. Only create,
# run and exec carry capabilities to trim; the front passes the rest straight to runc, and starts
# the wrapper with this interpreter, isolated (python3 on PATH may be a pyenv shim: 78 ms a call here).
RUNC_FRONT = """#!/bin/sh
# written by the sandbox (sandbox/engines.py): the Docker engine's runtime for this node
for a do
  case $a in create|run|exec) exec {python} -I -S {wrapper} "$@" ;; esac
done
exec /usr/sbin/runc "$@"
"""


def write_runtime(node: NodePaths) -> Path:
    """The node's runtime: a shell front to runc that calls the capability wrapper when needed."""
    front = node.root / "runc"
    front.write_text(RUNC_FRONT.format(python=shlex.quote(sys.executable), wrapper=shlex.quote(str(RUNC_WRAPPER))))
    front.chmod(0o755)
    return front


def client(node: NodePaths, timeout: int = 120) -> docker.DockerClient:
    return docker.DockerClient(base_url=node.docker_url, timeout=timeout)


def _ping(node: NodePaths) -> bool:
    c = client(node, timeout=3)
    try:
        return bool(c.ping())
    finally:
        c.close()


def start(node: NodePaths) -> None:
    if shutil.which("dockerd") is None:
        raise SandboxError("dockerd is not installed: apt-get install docker.io (or run the README's setup)")
    pidfile = node.root / "dockerd.pid"
    if pid_alive(pidfile) and node.sock.exists():
        try:
            if _ping(node):
                return
        except Exception:
            pass
    for d in ("engine/data", "engine/exec"):
        (node.root / d).mkdir(parents=True, exist_ok=True)
    node.sock.unlink(missing_ok=True)
    start_daemon(
        [
            "dockerd",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--storage-driver=overlay2",
            "--data-root",
            str(node.root / "engine/data"),
            "--exec-root",
            str(node.root / "engine/exec"),
            "-H",
            node.docker_url,
            "--pidfile",
            str(node.root / "dockerd.pid.engine"),
            "--add-runtime",
            f"sandbox-runc={write_runtime(node)}",
            "--default-runtime",
            "sandbox-runc",
        ],
        node.root / "dockerd.log",
        pidfile,
    )
    wait_for(lambda: _ping(node), 60, f"the Docker engine of {node.name} ({node.sock})", node.root / "dockerd.log")


def stop(node: NodePaths) -> None:
    """Stop the node's engine and its containers; unmount what it leaves (machine-notes)."""
    pidfile = node.root / "dockerd.pid"
    if pid_alive(pidfile):
        try:
            c = client(node, timeout=10)
            for ctr in c.containers.list():
                ctr.kill()
            c.close()
        except Exception:
            pass
    stop_pid(pidfile, timeout=30)
    unmount_below(node.root)


def unmount_below(root) -> None:
    """Unmount everything mounted below ``root``, deepest first."""
    root_s = str(root)
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return
    for mp in sorted((p for p in points if p == root_s or p.startswith(root_s + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def stop_daemon_only(node: NodePaths) -> None:
    """Make the engine unreachable, as a host whose Docker daemon is down.

    The containers that ran are remembered, so that ``start_again`` brings the node back as it
    was (as a restart policy would on a real host).
    """
    if pid_alive(node.root / "dockerd.pid") is None:
        return
    c = client(node, timeout=10)
    running = [ctr.id for ctr in c.containers.list()]
    c.close()
    (node.root / "running-before-fault.txt").write_text("\n".join(running))
    stop_pid(node.root / "dockerd.pid", timeout=30)


def start_again(node: NodePaths) -> None:
    start(node)
    marker = node.root / "running-before-fault.txt"
    if marker.exists():
        c = client(node)
        for cid in marker.read_text().split():
            c.containers.get(cid).start()
        c.close()
        marker.unlink()
