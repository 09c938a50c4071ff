"""SSH as OpenSSH does it, one behaviour for host commands and for the container engine.

Each ssh:// host is resolved with `ssh -G` (Include, ProxyJump, User, Port, IdentityFile: what
`ssh` itself would use); every connection then goes through the system's `ssh` with BatchMode
(never a prompt) and StrictHostKeyChecking=yes whatever the configuration says, so host keys are
verified on every connection, a reconnect included. Connections share one master per host
(ControlMaster, in a private folder). The container engine of an ssh:// node is reached the way
the docker CLI does it, `ssh <host> docker system dial-stdio`, behind a private local socket the
docker SDK talks to, so it uses the very same transport.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import HostProblem

SSH_SPEC = re.compile(r"^ssh://(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+|\[[^\]]+\])(?::(?P<port>\d+))?$")
FORCED = (
    "BatchMode=yes",
    "StrictHostKeyChecking=yes",
    "ConnectTimeout=10",
    "ServerAliveInterval=15",
    "ServerAliveCountMax=4",
)


@dataclass(frozen=True)
class SshTarget:
    """An ssh:// host as `ssh -G` resolves it."""

    spec: str
    alias: str  # what is given to ssh (a Host entry of the config, or a name/ip)
    user: str | None
    port: str | None
    resolved: dict[str, str] = field(default_factory=dict)  # `ssh -G` output, the keys in lower case

    def describe(self) -> dict[str, str]:
        r = self.resolved
        return {
            k: r.get(k, "")
            for k in (
                "hostname",
                "user",
                "port",
                "proxyjump",
                "identityfile",
                "userknownhostsfile",
                "stricthostkeychecking",
            )
        }


def parse_spec(spec: str) -> tuple[str | None, str, str | None]:
    m = SSH_SPEC.match(spec)
    if not m:
        raise HostProblem(f"{spec!r} is not an ssh://[user@]host[:port] address")
    return m.group("user"), m.group("host").strip("[]"), m.group("port")


def parse_ssh_g(text: str) -> dict[str, str]:
    """`ssh -G` output: one `key value...` per line; the first value of a key repeated (identityfile) wins
    where ssh would try it first, later ones are kept joined."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            key = key.lower()
            out[key] = f"{out[key]} {value}" if key in out and key in ("identityfile", "certificatefile") else value
    return out


@lru_cache(maxsize=64)
def resolve(spec: str) -> SshTarget:
    """Resolve an ssh:// host with `ssh -G` (the configuration as ssh reads it, Include and all)."""
    if shutil.which("ssh") is None:
        raise HostProblem(
            "the OpenSSH client (ssh) is not installed on this machine", "install it (Debian: openssh-client)"
        )
    user, host, port = parse_spec(spec)
    argv = ["ssh", "-G", *(["-l", user] if user else []), *(["-p", port] if port else []), host]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise HostProblem(
            f"`{shlex.join(argv)}` exited {p.returncode}: {p.stderr.strip()[-500:]}",
            "check ~/.ssh/config (its Include files too)",
        )
    return SshTarget(spec, host, user, port, parse_ssh_g(p.stdout))


_control_dir: list[str] = []


def control_dir() -> str:
    """A private folder for this process's master connections (removed at exit)."""
    if not _control_dir:
        d = tempfile.mkdtemp(prefix="omsup-ssh-")
        os.chmod(d, 0o700)
        _control_dir.append(d)
        import atexit

        atexit.register(_close_masters, d)
    return _control_dir[0]


def _close_masters(d: str) -> None:
    for name in os.listdir(d):
        subprocess.run(
            ["ssh", "-o", f"ControlPath={os.path.join(d, name)}", "-O", "exit", "x"], capture_output=True, timeout=10
        )
    shutil.rmtree(d, ignore_errors=True)


def options(target: SshTarget) -> list[str]:
    """The options every connection to ``target`` gets (they override the configuration's)."""
    out = []
    for o in FORCED:
        out += ["-o", o]
    out += ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir()}/%C", "-o", "ControlPersist=60"]
    if target.user:
        out += ["-l", target.user]
    if target.port:
        out += ["-p", target.port]
    return out


def command(target: SshTarget, remote: str) -> list[str]:
    """The argv that runs ``remote`` (a shell command line) on ``target``."""
    return ["ssh", *options(target), "--", target.alias, remote]


class DialStdio:
    """A private local socket whose every connection is relayed to `ssh <host> [sudo -n] docker system dial-stdio`.

    The docker SDK talks to it as to a local engine; each of its connections is one ssh session on
    the host's master connection, with the same options as every host command.
    """

    def __init__(self, target: SshTarget, remote: str) -> None:
        self.argv = command(target, remote)
        self.dir = tempfile.mkdtemp(prefix="omsup-engine-")
        os.chmod(self.dir, 0o700)
        self.path = os.path.join(self.dir, "docker.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(16)
        self.last_error = ""
        self.procs: list[subprocess.Popen[bytes]] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        p = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        self.procs.append(p)

        def upstream() -> None:
            assert p.stdin is not None
            try:
                while data := conn.recv(65536):
                    p.stdin.write(data)
                    p.stdin.flush()
            except OSError:
                pass
            finally:
                try:
                    p.stdin.close()
                except OSError:
                    pass

        t = threading.Thread(target=upstream, daemon=True)
        t.start()
        assert p.stdout is not None and p.stderr is not None
        try:
            while data := os.read(p.stdout.fileno(), 65536):
                conn.sendall(data)
        except OSError:
            pass
        finally:
            try:  # the client sees the end at once (close alone waits for the upstream thread's recv)
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
            err = p.stderr.read().decode("utf-8", "replace").strip()
            if p.wait() != 0 and err:
                self.last_error = err.splitlines()[-1][:300]
            self.procs.remove(p)
            p.stdout.close()
            p.stderr.close()

    def close(self) -> None:
        self.closed = True
        self.server.close()
        for p in list(self.procs):
            p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
