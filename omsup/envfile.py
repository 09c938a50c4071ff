"""The environment file: one YAML file describes one OMS CE deployment.

It is read and validated once, before any step, into a frozen ``Environment``. Every mistake
names the file, the key, what was expected and what was seen. Names that later reach SQL, a
shell or a path (databases, the container, folders) are checked against strict patterns here,
so nothing can be smuggled through them. Secrets are references (``{env: NAME}`` or
``{file: PATH}``); an inline string works but is discouraged. See env.example.yaml.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import redact
from .errors import ConfigError
from .versions import Version, VersionError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CONTAINER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DB_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PATH_RE = re.compile(r"^/[A-Za-z0-9_./@+,:=~-]*$")
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
SSH_RE = re.compile(r"^(ssh|paramiko)://(?:(?P<user>[A-Za-z0-9_.-]{1,32})@)?(?P<host>[A-Za-z0-9.:\[\]-]{1,253}?)(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class Secret:
    """A secret value and where it came from; never shown by repr or str."""

    source: str
    value: str = field(repr=False)

    def __str__(self) -> str:
        return f"<secret from {self.source}>"


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    host: str  # testinfra host spec: local:// or ssh://user@host[:port]
    docker: str  # Docker engine URL: unix:///path, ssh://user@host, tcp://host:port
    region: str


@dataclass(frozen=True)
class Region:
    name: str
    cm_hb: str
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class MetaDB:
    host: str
    port: int
    user: str
    password: Secret
    rm: str
    cm: str


@dataclass(frozen=True)
class Backup:
    host: str
    dir: str


@dataclass(frozen=True)
class HA:
    perceive_store_client_checkpoint: bool
    refetch_margin_min: int


@dataclass(frozen=True)
class Console:
    port: int
    scheme: str
    user: str
    password: Secret
    ca_file: str | None


@dataclass(frozen=True)
class Environment:
    source: str
    name: str
    container: str
    version: Version | None
    packages: Mapping[Version, str]
    metadb: MetaDB
    regions: tuple[Region, ...]
    backup: Backup
    ha: HA
    console: Console
    state_dir: str

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(n for r in self.regions for n in r.nodes)

    def databases(self) -> list[tuple[str, str]]:
        """(role, name) of every database the procedure backs up: rm, cm and each region's cm_hb (doc 004)."""
        return [("rm", self.metadb.rm), ("cm", self.metadb.cm)] + [("cm_hb", r.cm_hb) for r in self.regions]


class _Reader:
    """Walks the parsed YAML, collecting the first error with its full key."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.base = Path(file).resolve().parent

    def err(self, key: str, expected: str, seen: object, hint: str | None = None) -> ConfigError:
        return ConfigError(self.file, key, expected, seen, hint)

    def mapping(self, obj: Any, key: str, allowed: set[str], required: set[str]) -> dict[Any, Any]:
        if not isinstance(obj, dict):
            raise self.err(key or "(top level)", "a mapping", obj)
        for k in obj:
            if not isinstance(k, str) or k not in allowed:
                near = ", ".join(sorted(allowed))
                raise self.err(f"{key}.{k}" if key else str(k), f"one of the known keys ({near})", k,
                               "remove or correct the key (a typo here is never ignored)")
        for k in sorted(required):
            if k not in obj or obj[k] is None:
                raise self.err(f"{key}.{k}" if key else k, "a value", None)
        return obj

    def string(self, obj: Any, key: str, pattern: re.Pattern[str], what: str) -> str:
        if not isinstance(obj, str) or not pattern.match(obj):
            raise self.err(key, what, obj)
        return obj

    def integer(self, obj: Any, key: str, lo: int, hi: int) -> int:
        if isinstance(obj, bool) or not isinstance(obj, int) or not lo <= obj <= hi:
            raise self.err(key, f"a whole number from {lo} to {hi}", obj)
        return obj

    def boolean(self, obj: Any, key: str) -> bool:
        if not isinstance(obj, bool):
            raise self.err(key, "true or false", obj)
        return obj

    def path(self, obj: Any, key: str) -> str:
        return self.string(obj, key, PATH_RE, "an absolute path of letters, digits and _ . / @ + , : = ~ -")

    def version(self, obj: Any, key: str) -> Version:
        try:
            return Version.parse(obj)
        except VersionError as e:
            raise self.err(key, "a version such as 4.2.8-CE", obj) from e

    def ip(self, obj: Any, key: str) -> str:
        try:
            return str(ipaddress.ip_address(str(obj)))
        except ValueError as e:
            raise self.err(key, "an IP address such as 10.0.0.2", obj) from e

    def address(self, obj: Any, key: str) -> str:
        if isinstance(obj, str):
            try:
                return str(ipaddress.ip_address(obj))
            except ValueError:
                if HOSTNAME_RE.match(obj):
                    return obj
        raise self.err(key, "a host name or an IP address", obj)

    def host_spec(self, obj: Any, key: str) -> str:
        if obj == "local://":
            return "local://"
        if isinstance(obj, str) and SSH_RE.match(obj):
            return obj
        raise self.err(key, "a host spec: local:// or ssh://user@host[:port]", obj)

    def docker_url(self, obj: Any, key: str) -> str:
        if isinstance(obj, str):
            if obj.startswith("unix://") and PATH_RE.match(obj[len("unix://"):]):
                return obj
            if SSH_RE.match(obj) and obj.startswith("ssh://"):
                return obj
            if re.match(r"^tcp://[A-Za-z0-9.-]+:\d{1,5}$", obj):
                return obj
        raise self.err(key, "a Docker engine URL: unix:///var/run/docker.sock, ssh://user@host or tcp://host:port", obj)

    def secret(self, obj: Any, key: str) -> Secret:
        if isinstance(obj, str):
            if not obj:
                raise self.err(key, "a non-empty secret or a reference {env: NAME} / {file: PATH}", obj)
            redact.register(obj)
            return Secret(f"{self.file}:{key} (inline)", obj)
        if isinstance(obj, dict) and len(obj) == 1:
            kind, ref = next(iter(obj.items()))
            if kind == "env" and isinstance(ref, str) and ENV_VAR_RE.match(ref):
                value = os.environ.get(ref)
                if not value:
                    raise self.err(key, f"the environment variable {ref} to be set", None,
                                   f"export {ref}=... (the secret) before running, or point '{key}' elsewhere")
                redact.register(value)
                return Secret(f"env:{ref}", value)
            if kind == "file" and isinstance(ref, str):
                p = (self.base / ref) if not ref.startswith("/") else Path(ref)
                try:
                    value = p.read_text(encoding="utf-8").rstrip("\n")
                except OSError as e:
                    raise self.err(key, "a readable secret file", ref, f"create {p} (mode 0600) or fix the path") from e
                except UnicodeDecodeError as e:
                    raise self.err(key, "a secret file in UTF-8", f"{ref} (byte {e.start} is not UTF-8)",
                                   "write the secret in UTF-8, as the MetaDB and the console expect it") from None
                if not value:
                    raise self.err(key, "a non-empty secret file", ref)
                redact.register(value)
                return Secret(f"file:{p}", value)
        raise self.err(key, "a secret reference {env: NAME} or {file: PATH} (or an inline string)",
                       "<a mapping>" if isinstance(obj, dict) else type(obj).__name__)


TOP_KEYS = {"name", "container", "version", "packages", "metadb", "regions", "backup", "ha", "console", "state_dir"}


def load(path: str | os.PathLike[str]) -> Environment:
    """Read and validate an environment file.

    Raises:
        ConfigError: the file, the key, what was expected and what was seen.
    """
    file = str(path)
    r = _Reader(file)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(file, "(file)", "an existing environment file", None,
                          "pass --env PATH of a YAML file (see env.example.yaml)") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(file, "(file)", "a readable UTF-8 file", str(e)) from e
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(file, "(syntax)", "valid YAML", f"{getattr(e, 'problem', e)} at {where}") from e
    top = r.mapping(doc, "", TOP_KEYS, {"name", "container", "metadb", "regions", "backup", "console"})
    name = r.string(top["name"], "name", NAME_RE, "a name of letters, digits, _ . - (at most 64)")
    container = r.string(top["container"], "container", CONTAINER_RE, "a Docker container name")
    version = r.version(top["version"], "version") if top.get("version") is not None else None
    packages: dict[Version, str] = {}
    pk = top.get("packages") or {}
    if not isinstance(pk, dict):
        raise r.err("packages", "a mapping of version: path of the installation package on the nodes", pk)
    for k, v in pk.items():
        packages[r.version(k, f"packages.{k}")] = r.path(v, f"packages.{k}")

    m = r.mapping(top["metadb"], "metadb", {"host", "port", "user", "password", "rm", "cm"},
                  {"host", "port", "user", "password", "rm", "cm"})
    metadb = MetaDB(
        host=r.address(m["host"], "metadb.host"),
        port=r.integer(m["port"], "metadb.port", 1, 65535),
        user=r.string(m["user"], "metadb.user", USER_RE, "a user name such as root@oms_tenant"),
        password=r.secret(m["password"], "metadb.password"),
        rm=r.string(m["rm"], "metadb.rm", DB_RE, "a database name of letters, digits and _"),
        cm=r.string(m["cm"], "metadb.cm", DB_RE, "a database name of letters, digits and _"),
    )

    regions_raw = top["regions"]
    if not isinstance(regions_raw, list) or not regions_raw:
        raise r.err("regions", "a non-empty list of regions", regions_raw)
    regions: list[Region] = []
    seen_nodes: dict[str, str] = {}
    seen_ips: dict[str, str] = {}
    seen_db = {metadb.rm: "metadb.rm", metadb.cm: "metadb.cm"}
    for i, reg in enumerate(regions_raw):
        key = f"regions[{i}]"
        rg = r.mapping(reg, key, {"name", "cm_hb", "nodes"}, {"name", "cm_hb", "nodes"})
        rname = r.string(rg["name"], f"{key}.name", NAME_RE, "a region name of letters, digits, _ . -")
        cm_hb = r.string(rg["cm_hb"], f"{key}.cm_hb", DB_RE, "a database name of letters, digits and _")
        if cm_hb in seen_db:
            raise r.err(f"{key}.cm_hb", f"a database other than {seen_db[cm_hb]}'s", cm_hb)
        seen_db[cm_hb] = f"{key}.cm_hb"
        nodes_raw = rg["nodes"]
        if not isinstance(nodes_raw, list) or not nodes_raw:
            raise r.err(f"{key}.nodes", "a non-empty list of nodes", nodes_raw)
        nodes = []
        for j, nd in enumerate(nodes_raw):
            nkey = f"{key}.nodes[{j}]"
            n = r.mapping(nd, nkey, {"name", "ip", "host", "docker"}, {"name", "ip", "host", "docker"})
            node = Node(
                name=r.string(n["name"], f"{nkey}.name", NAME_RE, "a node name of letters, digits, _ . -"),
                ip=r.ip(n["ip"], f"{nkey}.ip"),
                host=r.host_spec(n["host"], f"{nkey}.host"),
                docker=r.docker_url(n["docker"], f"{nkey}.docker"),
                region=rname,
            )
            if node.name in seen_nodes:
                raise r.err(f"{nkey}.name", f"a name not used already (used at {seen_nodes[node.name]})", node.name)
            if node.ip in seen_ips:
                raise r.err(f"{nkey}.ip", f"an IP not used already (used at {seen_ips[node.ip]})", node.ip)
            seen_nodes[node.name], seen_ips[node.ip] = nkey, nkey
            nodes.append(node)
        regions.append(Region(rname, cm_hb, tuple(nodes)))

    b = r.mapping(top["backup"], "backup", {"host", "dir"}, {"host", "dir"})
    backup = Backup(host=r.host_spec(b["host"], "backup.host"), dir=r.path(b["dir"], "backup.dir"))

    h = r.mapping(top.get("ha") or {}, "ha", {"perceive_store_client_checkpoint", "refetch_margin_min"}, set())
    ha = HA(
        perceive_store_client_checkpoint=r.boolean(h.get("perceive_store_client_checkpoint", False),
                                                   "ha.perceive_store_client_checkpoint"),
        refetch_margin_min=r.integer(h.get("refetch_margin_min", 5), "ha.refetch_margin_min", 0, 10_000),
    )

    c = r.mapping(top["console"], "console", {"port", "scheme", "user", "password", "ca_file"}, {"user", "password"})
    scheme = c.get("scheme", "http")
    if scheme not in ("http", "https"):
        raise r.err("console.scheme", "http or https", scheme)
    console = Console(
        port=r.integer(c.get("port", 8089), "console.port", 1, 65535),
        scheme=scheme,
        user=r.string(c["user"], "console.user", USER_RE, "a console user name"),
        password=r.secret(c["password"], "console.password"),
        ca_file=r.path(c["ca_file"], "console.ca_file") if c.get("ca_file") else None,
    )
    redact.register_basic_auth(console.user, console.password.value)
    state_dir = r.path(top["state_dir"], "state_dir") if top.get("state_dir") else str(
        Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "omsup" / name
    )
    return Environment(
        source=str(Path(file).resolve()), name=name, container=container, version=version, packages=packages,
        metadb=metadb, regions=tuple(regions), backup=backup, ha=ha, console=console, state_dir=state_dir,
    )
