"""SSH as OpenSSH does it, one behaviour for host commands and for the container engine.

Each ssh:// host is resolved with `ssh -G` (Include, ProxyJump, User, Port, IdentityFile: what
`ssh` itself would use); every connection then goes through the system's `ssh` with BatchMode
(never a prompt) and StrictHostKeyChecking=yes whatever the configuration says, so host keys are
verified on every connection, a reconnect included. Every hop too: OpenSSH builds the inner
`ssh -W` of a ProxyJump itself, and options given on the command line reach only the outer ssh, so
a jump host would be reached with whatever its config entry says (`StrictHostKeyChecking no`,
`UserKnownHostsFile /dev/null`). Here the chain is built from `ssh -G` of each hop instead, as an
explicit ProxyCommand per hop carrying the same forced options and the target's known_hosts files
(ProxyCommand given with -o wins over the config's ProxyJump: the first value obtained wins). A
ProxyCommand of the user's own that runs ssh cannot be made strict and is refused; one that is no
ssh (nc, socat, an HTTP proxy) is a transport without host keys and is kept: the target's key is
verified through it. Connections share one master per host
(ControlMaster, in a private folder). The container engine of an ssh:// node is reached the way
the docker CLI does it, `ssh <host> docker system dial-stdio`, behind a private local socket the
docker SDK talks to, so it uses the very same transport.
"""

from __future__ import annotations

import atexit
import hashlib
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
from ..hostspec import SpecError, parse_url

HOP = re.compile(r"(?:ssh://)?(?:(?P<user>[^@/,]+)@)?(?P<host>[^:/,\[\]@]+|\[[^\],]+\])(?::(?P<port>\d+))?")
RUNS_SSH = re.compile(r"(?:^|[\s/;|&(`'\"])ssh(?:$|[\s;|&)`'\"])")  # a ProxyCommand that runs ssh itself
MAX_HOPS = 8
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
    proxy: str | None = None  # the strict ProxyCommand built from its ProxyJump chain (None: direct)
    hops: tuple[str, ...] = ()  # the jump hosts it is reached through, outermost first

    def describe(self) -> dict[str, str]:
        r = self.resolved
        out = {
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
        out["stricthostkeychecking"] = "yes (forced on every hop)"
        out["through"] = " -> ".join(self.hops) if self.hops else "direct"
        return out


def parse_spec(spec: str) -> tuple[str | None, str, str | None]:
    """The environment file's parser (omsup.hostspec): IPv6 in brackets, ports 1-65535."""
    try:
        user, host, port = parse_url(spec, "ssh")
    except SpecError as e:
        raise HostProblem(f"{e}: not an ssh://[user@]host[:port] address") from None
    return user, host, None if port is None else str(port)


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


def _ssh_g(user: str | None, host: str, port: str | None) -> dict[str, str]:
    argv = ["ssh", "-G", *(["-l", user] if user else []), *(["-p", port] if port else []), "--", host]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise HostProblem(
            f"`{shlex.join(argv)}` exited {p.returncode}: {p.stderr.strip()[-500:]}",
            "check ~/.ssh/config (its Include files too)",
        )
    return parse_ssh_g(p.stdout)


def _set(value: str | None) -> bool:
    return bool(value) and str(value).lower() != "none"


def known_hosts_options(resolved: dict[str, str]) -> list[str]:
    """The target's known_hosts files, given to every hop of its chain (a hop's own config entry may
    point at /dev/null)."""
    out = []
    for key, opt in (("userknownhostsfile", "UserKnownHostsFile"), ("globalknownhostsfile", "GlobalKnownHostsFile")):
        if _set(resolved.get(key)):
            out += ["-o", f"{opt}={resolved[key]}"]
    return out


def parse_hops(value: str, where: str) -> list[tuple[str | None, str, str | None]]:
    """A ProxyJump value ``[user@]host[:port][,...]`` (or ssh:// URIs) as (user, host, port) per hop."""
    hops = []
    for part in value.split(","):
        m = HOP.fullmatch(part.strip())
        if not m:
            raise HostProblem(
                f"{where}: ProxyJump {value!r} has a hop {part!r} that is not [user@]host[:port]",
                "correct the ProxyJump line of your ssh configuration",
            )
        hops.append((m.group("user"), m.group("host").strip("[]"), m.group("port")))
    return hops


def _proxy_of(resolved: dict[str, str], known: list[str], where: str, depth: int) -> tuple[str | None, list[str]]:
    """The strict ProxyCommand for a host ``ssh -G`` resolved as ``resolved`` (None: direct, or the user's own
    ProxyCommand that runs no ssh), and the hops it goes through."""
    if _set(resolved.get("proxyjump")):
        return _chain(parse_hops(resolved["proxyjump"], where), known, where, depth)
    command = resolved.get("proxycommand")
    if _set(command) and RUNS_SSH.search(str(command)):
        raise HostProblem(
            f"{where}: your ssh configuration reaches it through `ProxyCommand {command}`, which runs ssh "
            "itself: omsup cannot make that hop verify host keys (StrictHostKeyChecking=yes, BatchMode=yes)",
            "write the jump as ProxyJump (omsup builds each hop itself, strict), or give the host's address directly",
        )
    return None, []


def _chain(
    hops: list[tuple[str | None, str, str | None]], known: list[str], where: str, depth: int
) -> tuple[str, list[str]]:
    """The ProxyCommand that reaches the last of ``hops`` through the ones before it (or through what its own
    config entry says), every hop with the forced options and the target's known_hosts files."""
    if depth + len(hops) > MAX_HOPS:
        raise HostProblem(
            f"{where}: the ProxyJump chain is longer than {MAX_HOPS} hops (a loop in the ssh configuration?)",
            "check the ProxyJump lines of your ssh configuration",
        )
    user, host, port = hops[-1]
    resolved = _ssh_g(user, host, port)
    hop_name = f"jump host {host}"
    inner: str | None
    if len(hops) > 1:
        inner, through = _chain(hops[:-1], known, where, depth + 1)
    else:
        inner, through = _proxy_of(resolved, known, f"{where}, {hop_name}", depth + 1)
    argv = ["ssh"]
    for o in FORCED:
        argv += ["-o", o]
    argv += [*known, "-o", "ControlMaster=no", "-o", "ControlPath=none"]
    if inner is not None:  # the inner command is expanded by this hop's ssh: its % escaped once for ours
        argv += ["-o", "ProxyCommand=" + inner.replace("%", "%%")]
    argv += [*(["-l", user] if user else []), *(["-p", port] if port else []), "-W", "%h:%p", "--", host]
    # what a hop says (its host key refused) is kept: a master that went to the background has no stderr
    return f"{shlex.join(argv)} 2>>{shlex.quote(hop_log())}", [*through, host]


def hop_log() -> str:
    """Where the jump hosts' ssh write their errors (in the private folder of this process's masters)."""
    return os.path.join(control_dir(), "hops.log")


def hop_errors() -> str:
    """The last lines the jump hosts' ssh wrote since this was last asked ("" when none); the log is emptied."""
    path = hop_log()
    try:
        with open(path, "r+", encoding="utf-8", errors="replace") as f:
            lines = [x.strip() for x in f.read()[-4000:].splitlines() if x.strip()]
            f.seek(0)
            f.truncate()
    except OSError:
        return ""
    return " / ".join(lines[-3:])


@lru_cache(maxsize=64)
def resolve(spec: str) -> SshTarget:
    """Resolve an ssh:// host with `ssh -G` (the configuration as ssh reads it, Include and all), and the
    strict chain of its jump hosts, if any."""
    if shutil.which("ssh") is None:
        raise HostProblem(
            "the OpenSSH client (ssh) is not installed on this machine", "install it (Debian: openssh-client)"
        )
    user, host, port = parse_spec(spec)
    resolved = _ssh_g(user, host, port)
    proxy, hops = _proxy_of(resolved, known_hosts_options(resolved), f"host {spec}", 0)
    return SshTarget(spec, host, user, port, resolved, proxy, tuple(hops))


_control_dir: list[str] = []


def control_dir() -> str:
    """A private folder for this process's master connections (removed at exit)."""
    if not _control_dir:
        d = tempfile.mkdtemp(prefix="omsup-ssh-")
        os.chmod(d, 0o700)
        _control_dir.append(d)
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
    # one master per host and route: a host reached through jump hosts never shares the master of a direct
    # connection to the same address (%C alone is the same for both)
    route = hashlib.sha256((target.proxy or "direct").encode()).hexdigest()[:8]
    out += ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir()}/{route}-%C", "-o", "ControlPersist=60"]
    if target.proxy is not None:  # every hop strict: given here, it wins over the config's ProxyJump
        out += ["-o", f"ProxyCommand={target.proxy}"]
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
                hops = hop_errors()
                self.last_error = err.splitlines()[-1][:300] + (f"; jump host: {hops[:300]}" if hops else "")
            self.procs.remove(p)
            p.stdout.close()
            p.stderr.close()

    def close(self) -> None:
        self.closed = True
        self.server.close()
        for p in list(self.procs):
            p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
