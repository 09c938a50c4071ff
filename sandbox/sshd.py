"""`up --ssh`: each node its own sshd on 127.0.0.N:22 with key authentication.

The login shell of a node's sshd gets ``DOCKER_HOST`` of that node's engine (SetEnv,
shared/machine-notes.md), so `docker` over SSH talks to that node, as on a real host. The
client side (OpenSSH's ssh, for commands and for `docker system dial-stdio`) finds the key and the host keys
through one ``Include`` line the sandbox adds to ~/.ssh/config between markers, and removes
again on `down`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from pathlib import Path

from . import paths
from .procs import SandboxError, pid_alive, run, start_daemon, stop_pid, wait_for

ROOT = paths.STATE_DIR / "ssh"
USER_CONFIG = Path.home() / ".ssh" / "config"
BEGIN, END = "# >>> omsup sandbox (python -m sandbox) >>>", "# <<< omsup sandbox <<<"


def _keys() -> tuple[Path, Path]:
    ROOT.mkdir(parents=True, exist_ok=True, mode=0o700)
    host_key, client_key = ROOT / "host_ed25519", ROOT / "id_ed25519"
    for k in (host_key, client_key):
        if not k.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "omsup-sandbox", "-f", str(k)])
    return host_key, client_key


def _install_include() -> None:
    USER_CONFIG.parent.mkdir(mode=0o700, exist_ok=True)
    text = USER_CONFIG.read_text() if USER_CONFIG.exists() else ""
    if BEGIN in text:
        return
    block = f"{BEGIN}\nInclude {ROOT / 'ssh_config'}\n{END}\n"
    USER_CONFIG.write_text(block + text)  # Include must precede any Host block
    os.chmod(USER_CONFIG, 0o600)


def _remove_include() -> None:
    if not USER_CONFIG.exists():
        return
    lines = USER_CONFIG.read_text().splitlines(keepends=True)
    out, skipping = [], False
    for line in lines:
        if line.strip() == BEGIN:
            skipping = True
            continue
        if line.strip() == END and skipping:
            skipping = False
            continue
        if not skipping:
            out.append(line)
    if out:
        USER_CONFIG.write_text("".join(out))
    else:
        USER_CONFIG.unlink()


def _port_open(ip: str) -> bool:
    with socket.create_connection((ip, 22), timeout=1):
        return True


def start_node(node: dict, host_key: Path, client_key: Path) -> None:
    d = ROOT / node["name"]
    d.mkdir(parents=True, exist_ok=True)
    pidfile = d / "sshd.pid"
    if pid_alive(pidfile):
        return
    sock = paths.node_paths(node["name"]).sock
    (d / "sshd_config").write_text(
        f"ListenAddress {node['ip']}:22\nHostKey {host_key}\nPidFile {d / 'sshd.pid.daemon'}\n"
        f"AuthorizedKeysFile {ROOT / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"SetEnv DOCKER_HOST=unix://{sock}\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    start_daemon(
        [shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], d / "sshd.log", pidfile
    )
    wait_for(lambda: _port_open(node["ip"]), 20, f"sshd of {node['name']} on {node['ip']}:22", d / "sshd.log")


def start_all(nodes: list[dict]) -> dict:
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        raise SandboxError("sshd is not installed: apt-get install openssh-server")
    host_key, client_key = _keys()
    (ROOT / "authorized_keys").write_text(Path(str(client_key) + ".pub").read_text())
    pub = Path(str(host_key) + ".pub").read_text().split()
    (ROOT / "known_hosts").write_text("".join(f"{n['ip']} {pub[0]} {pub[1]}\n" for n in nodes))
    (ROOT / "ssh_config").write_text(
        f"Host {' '.join(n['ip'] for n in nodes)}\n  User root\n  IdentityFile {client_key}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {ROOT / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        "  ConnectTimeout 5\n"
    )
    _install_include()
    for n in nodes:
        start_node(n, host_key, client_key)
    return {
        n["name"]: {"host": f"ssh://root@{n['ip']}", "docker": f"ssh://root@{n['ip']}", "identity": str(client_key)}
        for n in nodes
    }


def _descendants(pid: int) -> list[int]:
    """Processes under ``pid`` (read from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def stop_node(name: str, sessions: bool = False) -> None:
    """Stop a node's sshd; with ``sessions`` its open sessions too (clients must connect anew).

    Each session is a process of its own under the listener and outlives it; ending them is what a
    host reboot does to the clients' master connections.
    """
    pidfile = ROOT / name / "sshd.pid"
    pid = pid_alive(pidfile)
    kids = _descendants(pid) if sessions and pid else []
    stop_pid(pidfile)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def rekey(node: dict, client_key: Path) -> None:
    """The node's sshd with a host key no client knows (a reinstalled or impersonated host)."""
    stop_node(node["name"], sessions=True)
    other = ROOT / f"host_ed25519_other_{node['name']}"
    if not other.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "omsup-sandbox-other", "-f", str(other)])
    start_node(node, other, client_key)


def stop_all(nodes: list[dict]) -> None:
    for n in nodes:
        stop_node(n["name"])
    _remove_include()
