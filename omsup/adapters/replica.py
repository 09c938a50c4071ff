"""The rehearsal's isolated network on the rehearsal host (issue 29, point 4): a hub namespace and one network
namespace per replica node, joined by a bridge in the hub; nothing else.

Each node's namespace has its loopback and one veth whose peer is on the hub's bridge: it reaches the hub (where the
clone MetaDB listens) and the other replica nodes, and no address outside (no default route, no link to the host's
namespace; its 127.0.0.0/8 is its own). A Docker engine started in a node's namespace (``nsenter --net=``; ``ip netns
exec`` remounts /sys and dockerd then fails, machine notes) gives its ``--net host`` containers that namespace's
network, so the replica's OMS containers run as the document starts them and still reach nothing of production.

Every command runs on the rehearsal host through its Host adapter (recorded like any other). Root only.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import HostProblem, PreconditionRefused
from .engine import Engine
from .hosts import Host
from .metadb import MetaDB, quote_ident

NAME = re.compile(r"[a-z][a-z0-9]{1,7}")  # interface names are at most 15 bytes: NAME + "n12b"


@dataclass(frozen=True)
class ReplicaNet:
    host: Host  # the rehearsal host (local://)
    name: str  # short: namespaces NAME-hub, NAME-n1 ...; veths NAMEn1a / NAMEn1b
    nodes: int
    subnet: str = "10.213.0"  # a /24 of the namespaces alone: hub .1, node i .(10+i)

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise PreconditionRefused(f"replica network name {self.name!r}: expected 2-8 of [a-z0-9], a letter first")
        if not 1 <= self.nodes <= 32:
            raise PreconditionRefused(f"a replica of {self.nodes} nodes: expected 1 to 32")

    # -- names and addresses -------------------------------------------------------------------
    @property
    def hub(self) -> str:
        return f"{self.name}-hub"

    @property
    def hub_ip(self) -> str:
        return f"{self.subnet}.1"

    def ns(self, i: int) -> str:
        return f"{self.name}-n{i}"

    def ip(self, i: int) -> str:
        return f"{self.subnet}.{10 + i}"

    def in_ns(self, ns: str, command: str) -> str:
        """``command`` (a shell line) run in namespace ``ns``."""
        return f"ip netns exec {shlex.quote(ns)} /bin/sh -c {shlex.quote(command)}"

    def in_net_of(self, ns: str, command: str) -> str:
        """``command`` run with ``ns``'s network only (its mounts and /sys the host's): what a daemon needs."""
        return f"nsenter --net=/var/run/netns/{shlex.quote(ns)} /bin/sh -c {shlex.quote(command)}"

    # -- lifecycle -----------------------------------------------------------------------------
    def existing(self) -> list[str]:
        out = self.host.run("ip netns list", quiet=True).stdout
        mine = {self.hub, *(self.ns(i) for i in range(1, self.nodes + 1))}
        return [w.split()[0] for w in out.splitlines() if w.split() and w.split()[0] in mine]

    def create(self) -> None:
        """The hub with its bridge, and each node's namespace on it. Refused where one of them exists already
        (another rehearsal's, or a replica kept with --keep-replica): nothing is taken over."""
        left = self.existing()
        if left:
            raise PreconditionRefused(
                f"network namespaces {', '.join(left)} exist on the rehearsal host: another rehearsal's replica",
                "remove it first (ip netns del NAME for each), or give the rehearsal another name",
            )
        h = self.host
        h.check("ip netns add %s", self.hub, what="make the replica's hub namespace")
        h.check(
            self.in_ns(
                self.hub,
                f"ip link set lo up && ip link add br0 type bridge && ip addr add {self.hub_ip}/24 dev br0 "
                "&& ip link set br0 up",
            ),
            what="the hub's bridge",
        )
        for i in range(1, self.nodes + 1):
            ns, a, b = self.ns(i), f"{self.name}n{i}a", f"{self.name}n{i}b"
            h.check("ip netns add %s", ns, what=f"make replica node {i}'s namespace")
            h.check("ip link add %s type veth peer name %s", a, b, what="a veth pair")
            h.check("ip link set %s netns %s && ip link set %s netns %s", a, ns, b, self.hub, what="move the veths")
            h.check(
                self.in_ns(ns, f"ip link set lo up && ip addr add {self.ip(i)}/24 dev {a} && ip link set {a} up"),
                what=f"replica node {i}'s address",
            )
            h.check(self.in_ns(self.hub, f"ip link set {b} master br0 && ip link set {b} up"), what="join the bridge")

    def destroy(self) -> list[str]:
        """Remove every namespace of it (their veths go with them); what could not be removed."""
        failed = []
        for ns in self.existing():
            if self.host.run("ip netns del %s", ns).rc != 0:
                failed.append(ns)
        return failed

    # -- daemons in a namespace ----------------------------------------------------------------
    def start_daemon(self, ns: str | None, argv: list[str], log: str, pidfile: str) -> int:
        """Start ``argv`` in the background with ``ns``'s network (None: the rehearsal host's own), its output in
        ``log``; its PID (also written to ``pidfile``)."""
        line = f"setsid {shlex.join(argv)} >{shlex.quote(log)} 2>&1 </dev/null & echo $! > {shlex.quote(pidfile)}"
        where = ns or "the rehearsal host's network"
        self.host.check(
            self.in_net_of(ns, line) if ns else f"/bin/sh -c {shlex.quote(line)}", what=f"start {argv[0]} in {where}"
        )
        pid = self.host.check("cat %s", pidfile, what="the daemon's pid").strip()
        if not pid.isdigit():
            raise HostProblem(f"{argv[0]} in {where}: no pid in {pidfile} (saw {pid!r})")
        return int(pid)

    def start_relay(self, port: int, target: tuple[str, int], log: str, pidfile: str) -> int:
        """The relay (omsup/adapters/relay.py) from the hub's address, ``port``, to ``target`` (the scratch MetaDB
        the user named), started in the rehearsal host's network; its PID once it listens."""
        argv = [sys.executable, "-m", "omsup.adapters.relay", f"/run/netns/{self.hub}", self.hub_ip, str(port)]
        pid = self.start_daemon(None, [*argv, target[0], str(target[1])], log, pidfile)
        said = self.host.run(
            "for i in $(seq 50); do grep -q '^listening' %s && exit 0; sleep 0.2; done; cat %s; exit 1", log, log
        )
        if said.rc != 0:
            raise HostProblem(
                f"the relay to the scratch MetaDB did not listen within 10 s: {said.stdout.strip()[-500:]}"
            )
        return pid

    def stop_daemon(self, pid: int, wait_s: int = 20) -> None:
        """SIGTERM, then SIGKILL after ``wait_s`` seconds. Gone means no such process or a zombie (this process is
        the subreaper of what it started: signals.py; it reaps them at its end)."""
        self.host.run(
            "kill %s 2>/dev/null; for i in $(seq %s); do case \"$(ps -o stat= -p %s 2>/dev/null)\" in ''|Z*) exit 0;; "
            "esac; sleep 0.5; done; kill -9 %s 2>/dev/null; true",
            str(pid),
            str(wait_s * 2),
            str(pid),
            str(pid),
        )

    def exec_root(self, i: int) -> str:
        """Replica node ``i``'s engine's exec-root: short, as containerd's sockets beneath it must fit the 107
        bytes of a socket's path."""
        return f"/run/omsup-{self.name}-n{i}"

    def engine_argv(self, root: str, i: int, extra: tuple[str, ...] = ()) -> tuple[list[str], str]:
        """dockerd for replica node ``i`` (its own data-root, socket and pidfile under ``root``; its exec-root
        ``exec_root``), and its socket's URL."""
        sock = f"{root}/n{i}/docker.sock"
        argv = [
            "dockerd",
            "--iptables=false",
            "--bridge=none",
            "--storage-driver=overlay2",
            f"--data-root={root}/n{i}/data",
            f"--exec-root={self.exec_root(i)}",
            f"--pidfile={root}/n{i}/dockerd.pid",
            f"-H=unix://{sock}",
            *extra,
        ]
        return argv, f"unix://{sock}"


class NetnsHost(Host):
    """The rehearsal host with every command run in network namespace ``ns`` (the replica's hub): the scratch
    MetaDB's clients and the rehearsed runbooks reach the replica there, and nothing else."""

    def __init__(self, ns: str, label: str) -> None:
        super().__init__("local://", label)
        self.ns = ns

    def _sudo(self, shown: str) -> str:
        return f"ip netns exec {shlex.quote(self.ns)} /bin/sh -c {shlex.quote(shown)}"


def seekdb_binary(configured: str | None) -> str:
    """The scratch MetaDB's server: the environment file's rehearsal.seekdb, else the binary pylibseekdb ships
    (machine notes: pylibseekdb/seekdb, a standalone OceanBase-kernel server), else `seekdb` on PATH."""
    if configured:
        if not os.access(configured, os.X_OK):
            raise PreconditionRefused(
                f"rehearsal.seekdb {configured}: not an executable file on the rehearsal host",
                "name the seekdb server binary (pip install pylibseekdb ships one)",
            )
        return configured
    spec = importlib.util.find_spec("pylibseekdb")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "seekdb"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("seekdb")
    if found:
        return found
    raise PreconditionRefused(
        "no OceanBase-kernel server for the rehearsal's scratch MetaDB on this machine (rehearsal.seekdb unset, "
        "pylibseekdb not installed, no seekdb on PATH)",
        "pip install pylibseekdb==1.4.0.post1 into omsup's Python, or set rehearsal.seekdb to a seekdb binary",
    )


def seekdb_argv(binary: str, base: str, port: int) -> list[str]:
    """A private seekdb (machine notes: answers SQL after 1.3-2.7 s, ~300 MB RSS, ~420 MB disk; below 1G of
    memory_budget or with log_disk_size=1G it refuses to start)."""
    return [
        binary,
        "--nodaemon",
        "--base-dir",
        base,
        "--port",
        str(port),
        "--parameter",
        "memory_budget=1G",
        "--parameter",
        "datafile_size=256M",
        "--parameter",
        "log_disk_size=2G",
        "--parameter",
        "cpu_count=2",
    ]


# what waits, inside the hub, for a replica node's console: GET /oms/health until data.healthy is true (obd)
_WAIT_HEALTH = """
import json, ssl, sys, time, urllib.request
url, deadline, last = sys.argv[1], time.monotonic() + float(sys.argv[2]), "no answer"
ctx = ssl.create_default_context(cafile=sys.argv[3]) if len(sys.argv) > 3 else None
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=3, context=ctx) as r:
            data = (json.load(r) or {}).get("data") or {}
        if data.get("healthy") is True:
            print("healthy"); sys.exit(0)
        last = "healthy=%r" % (data.get("healthy"),)
    except Exception as e:
        last = "%s: %s" % (type(e).__name__, e)
    time.sleep(1)
print(last); sys.exit(1)
"""


def wait_healthy(hub: NetnsHost, url: str, seconds: int, ca_file: str | None = None) -> tuple[bool, str]:
    """Whether the console at ``url`` (reached from the hub; https: verified with ``ca_file``) said healthy within
    ``seconds``; what it said last."""
    extra = [ca_file] if ca_file else []
    r = hub.run("python3 -c %s %s %s" + " %s" * len(extra), _WAIT_HEALTH, url, str(seconds), *extra, quiet=True)
    return r.rc == 0, (r.stdout.strip().splitlines() or ["(nothing)"])[-1]


def make_tls(host: Host, folder: str, ips: list[str]) -> tuple[str, dict[str, tuple[str, str]]]:
    """The replica's own HTTPS: a CA made for this rehearsal and, for each replica address, a certificate it signs
    (subjectAltName IP:<address>) and its key, under ``folder`` (0700). Production's certificates name production's
    addresses and its keys stay where they are: a replica console serves HTTPS as production's does (the
    documented mounts, doc 003/004), with these. Returns the CA's certificate and {ip: (certificate, key)}."""
    host.check("umask 077 && mkdir -p %s", folder, what="the replica's TLS folder")
    ca, ca_key = f"{folder}/ca.crt", f"{folder}/ca.key"
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    host.check(
        f"umask 077 && openssl req -x509 {ec} -days 2 -subj /CN=omsup-rehearsal-ca -addext "
        "basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -keyout %s -out %s",
        ca_key,
        ca,
        what="the replica's certificate authority (openssl req -x509)",
    )
    out = {}
    for ip in ips:
        crt, key, ext = f"{folder}/{ip}.crt", f"{folder}/{ip}.key", f"{folder}/{ip}.ext"
        host.put_secret_file(ext, f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n")
        host.check(
            f"umask 077 && openssl req {ec} -subj /CN=%s -keyout %s -out %s.csr && openssl x509 -req "
            "-in %s.csr -CA %s -CAkey %s -CAcreateserial -days 2 -extfile %s -out %s && rm -f %s.csr %s",
            ip, key, crt, crt, ca, ca_key, ext, crt, crt, ext,
            what=f"the replica's certificate for {ip} (openssl x509 -req)",
        )  # fmt: skip
        out[ip] = (crt, key)
    host.remove(ca_key)  # nothing else is ever signed with it
    return ca, out


def wait_sql(hub: NetnsHost, port: int, seconds: int) -> bool:
    """Whether the scratch MetaDB answers `SELECT 1` as its passwordless root within ``seconds``."""
    r = hub.run(
        "for i in $(seq %s); do mysql -h127.0.0.1 -P%s -uroot -e 'SELECT 1' >/dev/null 2>&1 && exit 0; sleep 1; "
        "done; exit 1",
        str(seconds),
        str(port),
        quiet=True,
    )
    return r.rc == 0


def _sql_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def prepare_clone(
    root: MetaDB, hub: Host, folder: str, time_zone: str, user: str, password: str, dbs: list[str]
) -> None:
    """The scratch MetaDB as production's: its time zone, a user for the replica and the runbooks, the databases
    (the dumps go in next); its log kept small (machine notes: ~30 MB a minute at INFO)."""
    root.script(
        hub,
        folder,
        "ALTER SYSTEM SET syslog_level='WARN'; "
        f"SET GLOBAL time_zone={_sql_str(time_zone)}; "
        f"CREATE USER {user} IDENTIFIED BY {_sql_str(password)}; "
        f"GRANT ALL PRIVILEGES ON *.* TO {user} WITH GRANT OPTION; "
        + "".join(f"CREATE DATABASE {quote_ident(db)} DEFAULT CHARACTER SET utf8mb4; " for db in dbs),
        "prepare the scratch MetaDB",
    )


def map_addresses(clone: MetaDB, hub: Host, folder: str, rm: str, cm: str, ips: dict[str, str]) -> None:
    """The metadata that names node addresses, from production's addresses to the replica's: documented,
    cm.host.ip (the server list) and rm.cluster_info.cm_url; and cm.connector_task.host_ip where the table exists
    (where the runbooks reach a Connector's CM)."""
    sql = "".join(
        f"UPDATE {quote_ident(cm)}.host SET ip = {_sql_str(new)} WHERE ip = {_sql_str(old)}; "
        f"UPDATE {quote_ident(rm)}.cluster_info SET cm_url = REPLACE(cm_url, {_sql_str('//' + old + ':')}, "
        f"{_sql_str('//' + new + ':')}); "
        for old, new in ips.items()
    )
    if clone.script(hub, folder, f"SHOW TABLES FROM {quote_ident(cm)} LIKE 'connector_task'", "list cm").strip():
        # the Connectors' host (the runbooks reach each one's CM there: the Connector fix)
        sql += "".join(
            f"UPDATE {quote_ident(cm)}.connector_task SET host_ip = {_sql_str(new)} WHERE host_ip = {_sql_str(old)}; "
            for old, new in ips.items()
        )
    clone.script(hub, folder, sql, "map the node addresses in the scratch MetaDB")


def run_runbook(hub: NetnsHost, cwd: str, runbook: str, env_file: str, reports: str) -> tuple[int, str]:
    """``pytest RUNBOOK --env FILE`` inside the hub (the replica's consoles, engines and MetaDB are all it can
    reach), its run folder under ``reports``: its exit code and output."""
    r = hub.run(
        "cd %s && %s -m pytest %s --env %s --report-root %s -p no:cacheprovider -q --no-header",
        cwd,
        sys.executable,
        runbook,
        env_file,
        reports,
        quiet=True,
    )
    return r.rc, r.stdout + r.stderr


def remove_container(engine: Engine, name: str) -> None:
    """`docker rm -f NAME` on a replica engine (its teardown)."""
    engine.host.run(engine.cli_env() + "docker rm -f %s", name, quiet=True)


def unmount_engine(host: Host, exec_root: str, data_root: str) -> None:
    """An engine stopped in a namespace can leave EXEC_ROOT/netns/default mounted (machine notes), and one stopped
    before it finished starting its data-root's own mount: both are let go (nothing else is mounted there)."""
    host.run("umount %s 2>/dev/null; umount %s 2>/dev/null; true", f"{exec_root}/netns/default", data_root, quiet=True)


def remove_replica_files(host: Host, net: ReplicaNet, rh: str) -> None:
    """What a removed replica leaves that is only bulk (the scratch MetaDB's files, each engine's images and state,
    the saved image) and what holds a secret (the replica's secret files, its nodes' config.yaml): never the dumps,
    the environment file or rehearsal.json, which are the rehearsal's evidence."""
    paths = [f"{rh}/clone", f"{rh}/old-image.tar", f"{rh}/work", f"{rh}/secrets", f"{rh}/tmp", f"{rh}/tls"]
    for i in range(1, net.nodes + 1):  # a replica node's config.yaml holds the scratch MetaDB's password
        paths += [f"{rh}/n{i}/data", f"{rh}/n{i}/conf", net.exec_root(i)]
    host.run("rm -rf --one-file-system --" + " %s" * len(paths), *paths, quiet=True)


# oms-doc en-US/400.deployment-guide/300.resource-configuration-specifications.md (commit 1a226f25), "Standard
# resource specifications for basic services and database management": an OMS node asks 5 cores, 8 GB of memory
# and 200 GB of disk in total
NODE_CORES, NODE_MEMORY_GB, NODE_DISK_GB = 5, 8, 200


def parse_resources(text: str, what: str) -> tuple[int, int]:
    """`nproc; grep MemTotal /proc/meminfo`: (cores, memory in bytes)."""
    lines = str(text).split("\n")
    try:
        cores = int(lines[0].strip())
        fields = lines[1].split()
        assert fields[0] == "MemTotal:" and fields[2] == "kB"
        return cores, int(fields[1]) * 1024
    except (IndexError, ValueError, AssertionError):
        raise HostProblem(f"{what}: nproc and /proc/meminfo answered {text[:200]!r}") from None


def lacks(host: Host, folder: str, nodes: int) -> list[str]:
    """What the rehearsal host lacks of what the vendor asks of an OMS node, for ``nodes`` replica nodes: the cores
    (shared by the replica's nodes), the memory of each, and the disk of each in ``folder``."""
    cores, memory = parse_resources(
        host.check("nproc; grep MemTotal /proc/meminfo", what="cores and memory"), host.label
    )
    free = host.free_bytes(folder)
    out = []
    if cores < NODE_CORES:
        out.append(f"{cores} cores (an OMS node asks {NODE_CORES})")
    if memory < nodes * NODE_MEMORY_GB * 2**30:
        out.append(f"{memory / 2**30:.1f} GiB of memory ({nodes} node(s) x {NODE_MEMORY_GB} GB asked)")
    if free < nodes * NODE_DISK_GB * 10**9:
        out.append(f"{free / 10**9:.0f} GB free in {folder} ({nodes} node(s) x {NODE_DISK_GB} GB asked)")
    return out
