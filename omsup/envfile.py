"""The environment file: one YAML file describes one OMS CE deployment.

It is read and validated once, before any step, into a frozen ``Environment``. Every mistake of
a file is reported at once, each with its line, its key, what was expected and what was seen:
a file with five mistakes takes one run to fix, not five. Names that later reach SQL, a shell
or a path (databases, the container, folders) are checked against strict patterns here, so
nothing can be smuggled through them. Secrets are references (``{env: NAME}`` or
``{file: PATH}``, the file 0600 and the user's own); an inline string works but is discouraged.

The file's structure is one pydantic model (``EnvFile``): it validates, collects every error,
and gives the JSON Schema editors use (``omsup schema``). See env.example.yaml.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from . import redact
from .adapters import secret_source
from .common_secrets import too_common
from .errors import ConfigError, Problem
from .hostspec import SpecError, parse_url
from .versions import Version, VersionError
from .yamltext import flow_depth

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CONTAINER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DB_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PATH_RE = re.compile(r"^/[A-Za-z0-9_./@+,:=~-]*$")
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
VAR_REF_RE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")

MAX_FILE_BYTES = 1024 * 1024  # an environment file is a few KB
MAX_NODES = 10_000  # YAML nodes after aliases are expanded (a 1 KB alias bomb expands to billions)
MAX_DEPTH = 32
MIN_SECRET_LENGTH = 8  # shorter secrets would mask ordinary words in every report
MAX_SECRET_FILE = 64 * 1024
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


# == the frozen environment the runbooks use ======================================================
@dataclass(frozen=True)
class Secret:
    """A secret value and where it came from; never shown by repr or str."""

    source: str
    value: str = field(repr=False)
    resolved: bool = True  # False: loaded without secrets (envfile.load(..., secrets=False)): value is empty

    def __str__(self) -> str:
        return f"<secret from {self.source}>"


@dataclass(frozen=True)
class TLS:
    ca: str
    cert: str
    key: str


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    host: str  # local:// or ssh://user@host[:port]
    docker: str  # Docker engine URL: unix:///path (on the node), ssh://user@host, tcp://host:port
    region: str
    sudo: bool = False  # docker and file commands the documents run with sudo
    tls: TLS | None = None  # client certificates for a tcp:// engine
    insecure: bool = False  # a tcp:// engine without TLS, said explicitly
    engine_via: str = "auto"  # auto | sdk | cli: how engine requests are made (omsup.adapters.engine)


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
    ssl_ca: str | None = None
    unlisted_engine_reason: str | None = None


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
    port: int | None  # None: each node's config.yaml says (nginx_server_port, 8089 by default)
    scheme: str
    user: str
    password: Secret
    ca_file: str | None


@dataclass(frozen=True)
class Rehearsal:
    """Where the rehearsal (runbooks/rehearse_*) builds its replica: the rehearsal host (this machine), its folder,
    the scratch MetaDB's server binary, the replica network's /24, and how old a rehearsal production accepts."""

    host: str = "local://"
    dir: str | None = None  # None: <state_dir>/rehearsals
    seekdb: str | None = None  # None: the seekdb of pylibseekdb, else `seekdb` on PATH
    subnet: str = "10.213.0"
    max_age_hours: int = 72
    dockerd_args: tuple[str, ...] = ()  # added to each replica engine's dockerd (a runtime this machine needs)
    below_requirements_reason: str | None = None  # rehearse on a host short of an OMS node's resources, and why
    metadb: MetaDB | None = None  # a scratch server the user names (MySQL, MariaDB); None: a private seekdb


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
    sha256: str = ""  # of the file as read
    # on each node: where the hot upgrade (OD 309) keeps the page's scripts and the files they dump
    work_dir: str = "/var/tmp/omsup"
    rehearsal: Rehearsal = Rehearsal()

    @property
    def rehearsal_dir(self) -> str:
        return self.rehearsal.dir or str(Path(self.state_dir) / "rehearsals")

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(n for r in self.regions for n in r.nodes)

    def transport_warnings(self) -> list[str]:
        """What crosses the network in clear with this file (shown at the start and in the report)."""
        out = []
        if self.console.scheme == "http":
            out.append(
                "console.scheme is http: the console's Basic auth credentials cross the network in clear; "
                "use https (console.scheme: https, console.ca_file for a private CA)"
            )
        out += [
            f"node {n.name}: its Docker engine {n.docker} is reached without TLS (insecure: true)"
            for n in self.nodes
            if n.docker.startswith("tcp://") and n.tls is None
        ]
        if self.metadb.ssl_ca is None and self.metadb.host not in ("127.0.0.1", "localhost", "::1"):
            out.append(
                f"the MetaDB {self.metadb.host}:{self.metadb.port} is reached without TLS (metadb.ssl_ca not set)"
            )
        return out

    @property
    def backup_dir(self) -> str:
        """This environment's folder on the backup host: its lock, its runs' backups, the client option files."""
        return f"{self.backup.dir.rstrip('/')}/{self.name}"

    def databases(self) -> list[tuple[str, str]]:
        """(role, name) of every database the procedure backs up: rm, cm and each region's cm_hb (doc 004)."""
        return [("rm", self.metadb.rm), ("cm", self.metadb.cm)] + [("cm_hb", r.cm_hb) for r in self.regions]


# == the file's model: validation, every error at once, the JSON Schema =========================
def _fail(what: str, hint: str = "") -> PydanticCustomError:
    return PydanticCustomError("omsup", "{what}", {"what": what, "hint": hint})


def _check(ok: Callable[[Any], bool], what: str) -> BeforeValidator:
    """A validator with the project's wording: the value is refused with ``what`` was expected."""

    def check(v: Any) -> Any:
        if not ok(v):
            raise _fail(what)
        return v

    return BeforeValidator(check)


def _url_check(what: str, *schemes: str) -> BeforeValidator:
    """ssh:// or tcp:// (omsup.hostspec, the parser the SSH adapter uses too), with what is wrong as the hint;
    local:// and unix:///path where ``schemes`` name them."""

    def check(v: Any) -> Any:
        if isinstance(v, str):
            if ("local" in schemes and v == "local://") or (
                "unix" in schemes and v.startswith("unix://") and PATH_RE.fullmatch(v[len("unix://") :])
            ):
                return v
            scheme = v.partition("://")[0]
            if scheme in schemes and scheme in ("ssh", "tcp"):
                try:
                    parse_url(v, scheme)
                    return v
                except SpecError as e:
                    raise _fail(what, str(e)) from None
        raise _fail(what)

    return BeforeValidator(check)


def _matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(pattern.fullmatch(v))


def _whole(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _schema(what: str, **schema: Any) -> WithJsonSchema:
    return WithJsonSchema({**schema, "description": what})


def _is_ip(v: Any) -> bool:
    try:
        ipaddress.ip_address(str(v))
        return isinstance(v, str)
    except ValueError:
        return False


def _is_version(v: Any) -> bool:
    try:
        Version.parse(v)
        return True
    except VersionError:
        return False


SECRET_KINDS = ("env", "file", "command")
MAX_ARGV = 32


def _is_argv(v: Any) -> bool:
    return (
        isinstance(v, list)
        and 1 <= len(v) <= MAX_ARGV
        and all(isinstance(a, str) and a and not CONTROL_RE.search(a) for a in v)
    )


def _secret_check() -> BeforeValidator:
    """{env: NAME}, {file: PATH}, {command: [argv...]} or an inline string; an unknown kind is answered with the
    kinds that exist."""

    def check(v: Any) -> Any:
        if isinstance(v, str):
            return v
        if isinstance(v, dict) and len(v) == 1:
            kind, ref = next(iter(v.items()))
            if kind == "env" and isinstance(ref, str) and ENV_VAR_RE.fullmatch(ref):
                return v
            if kind == "file" and isinstance(ref, str) and ref:
                return v
            if kind == "command" and _is_argv(ref):
                return v
            if kind not in SECRET_KINDS:
                # the kind is not echoed: `password: {hunter22}` is YAML for a mapping whose key is the secret
                raise _fail(W_SECRET, f"the kinds are {', '.join(SECRET_KINDS)}; the one written is none of them")
            if kind == "command":
                raise _fail(
                    W_SECRET,
                    f"command: a list of 1 to {MAX_ARGV} non-empty arguments, the program first "
                    "(command: [vault, kv, get, -field=password, secret/oms]); no shell is involved",
                )
        raise _fail(W_SECRET)

    return BeforeValidator(check)


W_NAME = "a name of letters, digits, _ . - (at most 64)"
W_CONTAINER = "a Docker container name"
W_DB = "a database name of letters, digits and _"
W_USER = "a user name such as root@oms_tenant"
W_PATH = "an absolute path of letters, digits and _ . / @ + , : = ~ -"
W_VERSION = "a version such as 4.2.8-CE"
W_IP = "an IP address such as 10.0.0.2"
W_ADDRESS = "a host name or an IP address"
W_HOST = "a host spec: local:// or ssh://user@host[:port]"
W_DOCKER = "a Docker engine URL: unix:///var/run/docker.sock, ssh://user@host or tcp://host:port"
W_SECRET = "a secret reference {env: NAME}, {file: PATH} or {command: [argv...]} (or an inline string)"
W_BOOL = "true or false"
W_PORT = "a whole number from 1 to 65535"
W_MARGIN = "a whole number from 0 to 10000"
SECRET_SCHEMA = [
    {"type": "string", "description": "inline (discouraged)"},
    {"type": "object", "properties": {"env": {"type": "string"}}, "required": ["env"], "additionalProperties": False},
    {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"], "additionalProperties": False},
    {
        "type": "object",
        "properties": {"command": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}},
        "required": ["command"],
        "additionalProperties": False,
        "description": "a program whose standard output is the secret (Vault, SOPS, pass, a cloud CLI); no shell",
    },
]

NameT = Annotated[str, _check(_matches(NAME_RE), W_NAME), _schema(W_NAME, type="string", pattern=NAME_RE.pattern)]
ContainerT = Annotated[
    str, _check(_matches(CONTAINER_RE), W_CONTAINER), _schema(W_CONTAINER, type="string", pattern=CONTAINER_RE.pattern)
]
DbT = Annotated[str, _check(_matches(DB_RE), W_DB), _schema(W_DB, type="string", pattern=DB_RE.pattern)]
UserT = Annotated[str, _check(_matches(USER_RE), W_USER), _schema(W_USER, type="string", pattern=USER_RE.pattern)]
PathT = Annotated[str, _check(_matches(PATH_RE), W_PATH), _schema(W_PATH, type="string", pattern=PATH_RE.pattern)]
VersionT = Annotated[
    str, _check(_is_version, W_VERSION), _schema(W_VERSION, type="string", pattern=r"^[Vv]?\d+\.\d+\.\d+")
]
IpT = Annotated[str, _check(_is_ip, W_IP), _schema(W_IP, type="string")]
AddressT = Annotated[
    str, _check(lambda v: _is_ip(v) or _matches(HOSTNAME_RE)(v), W_ADDRESS), _schema(W_ADDRESS, type="string")
]
HostSpecT = Annotated[str, _url_check(W_HOST, "local", "ssh"), _schema(W_HOST, type="string")]
DockerT = Annotated[str, _url_check(W_DOCKER, "unix", "ssh", "tcp"), _schema(W_DOCKER, type="string")]
SecretT = Annotated[Any, _secret_check(), _schema(W_SECRET, oneOf=SECRET_SCHEMA)]
BoolT = Annotated[bool, _check(lambda v: isinstance(v, bool), W_BOOL), _schema(W_BOOL, type="boolean")]
PortT = Annotated[int, _check(_whole(1, 65535), W_PORT), _schema(W_PORT, type="integer", minimum=1, maximum=65535)]
MarginT = Annotated[
    int, _check(_whole(0, 10_000), W_MARGIN), _schema(W_MARGIN, type="integer", minimum=0, maximum=10_000)
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TLSFile(_Model):
    """Client certificates for a tcp:// Docker engine (docker --tlsverify)."""

    ca: PathT
    cert: PathT
    key: PathT


class NodeFile(_Model):
    name: NameT
    ip: IpT
    host: HostSpecT = Field(description="how to run commands there: local:// or ssh://user@host[:port] (OpenSSH)")
    docker: DockerT = Field(description="the node's Docker engine")
    sudo: BoolT = False
    tls: TLSFile | None = None
    insecure: BoolT = False
    engine_via: Literal["auto", "sdk", "cli"] = Field(
        "auto",
        description="how engine requests are made: the docker SDK, or the docker CLI on the node (engines older than "
        "Docker 18.09 behind SSH); auto chooses",
    )


class RegionFile(_Model):
    name: NameT
    cm_hb: DbT
    nodes: Annotated[list[NodeFile], Field(min_length=1)]


class MetaDBFile(_Model):
    host: AddressT
    port: PortT
    user: UserT
    password: SecretT
    rm: DbT
    cm: DbT
    ssl_ca: PathT | None = Field(None, description="CA certificate: connect to the MetaDB over TLS, verified")
    unlisted_engine_reason: str | None = Field(
        None, description="run against a MetaDB engine the support table does not list, for this reason (reported)"
    )


class BackupFile(_Model):
    host: HostSpecT
    dir: PathT


class HAFile(_Model):
    perceive_store_client_checkpoint: BoolT = False
    refetch_margin_min: MarginT = 5


class ConsoleFile(_Model):
    port: PortT | None = Field(
        None, description="the console's port; left out, each node's config.yaml says (nginx_server_port, 8089)"
    )
    scheme: Literal["http", "https"] = Field("http", description="https recommended (Basic auth in clear otherwise)")
    user: UserT
    password: SecretT
    ca_file: PathT | None = None


class ScratchMetaDBFile(_Model):
    host: AddressT
    port: PortT
    user: UserT
    password: SecretT


class RehearsalFile(_Model):
    host: Literal["local://"] = Field(
        "local://",
        description="the rehearsal host: the machine the rehearsal runs on (as root: network namespaces, Docker "
        "engines); to rehearse on another machine, install omsup there and run the rehearsal there",
    )
    dir: PathT | None = Field(None, description="where replicas and their runs go; default <state_dir>/rehearsals")
    seekdb: PathT | None = Field(
        None, description="the scratch OceanBase-kernel MetaDB's server binary; default pylibseekdb's, or seekdb"
    )
    subnet: Annotated[str, Field(pattern=r"^(10|172\.(1[6-9]|2[0-9]|3[01])|192\.168)(\.[0-9]{1,3}){1,2}$")] = Field(
        "10.213.0", description="the first three octets of the replica network's private /24 (its own namespaces)"
    )
    max_age_hours: Annotated[int, Field(ge=1, le=24 * 30)] = Field(
        72, description="how old a rehearsal an upgrade run with --rehearsal accepts"
    )
    dockerd_args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list,
        description="more arguments for each replica engine's dockerd, such as --add-runtime NAME=PATH "
        "--default-runtime NAME where this machine's containers need a runtime of their own",
    )
    below_requirements_reason: str | None = Field(
        None,
        description="rehearse although this machine lacks what the vendor asks of an OMS node (5 cores, 8 GB and "
        "200 GB a node), for this reason (recorded in rehearsal.json, warned about)",
    )
    metadb: ScratchMetaDBFile | None = Field(
        None,
        description="a scratch server of the MetaDB's engine family the rehearsal may write (it creates the "
        "databases, refusing where one exists, and drops them afterwards; the replica reaches it through a relay on "
        "this machine, without TLS): required where the MetaDB is MySQL or MariaDB; default on OceanBase: a private "
        "seekdb the rehearsal starts and stops",
    )


class EnvFile(_Model):
    """An OMS CE deployment, described once for every runbook."""

    model_config = ConfigDict(extra="forbid", strict=True, title="omsup environment file")

    name: NameT
    container: ContainerT
    version: VersionT | None = None
    packages: dict[str, PathT] = Field(
        default_factory=dict, description="version: path of its installation package on the nodes"
    )
    metadb: MetaDBFile
    regions: Annotated[list[RegionFile], Field(min_length=1)]
    backup: BackupFile
    ha: HAFile = Field(default_factory=HAFile)
    console: ConsoleFile
    state_dir: PathT | None = None
    work_dir: PathT = Field(
        "/var/tmp/omsup",
        description="a folder on each node where the hot upgrade keeps the page's scripts and the files they dump "
        "(one folder per environment, node and run beneath it)",
    )
    rehearsal: RehearsalFile = Field(default_factory=RehearsalFile)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the environment file (what `omsup schema` prints)."""
    schema = EnvFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# == reading YAML: limits, duplicate keys, lines ====================================================
class _Composed:
    """A YAML document as plain values, with the line of every key and the text of every scalar."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[tuple[Any, ...], int] = {}
        self.raw: dict[tuple[Any, ...], str] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self._ctor = yaml.SafeLoader("")

    def value(self, node: yaml.Node, path: tuple[Any, ...], depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            raise ConfigError(
                self.file,
                "(file)",
                f"at most {MAX_NODES} values nested at most {MAX_DEPTH} deep (after YAML aliases are expanded)",
                f"more, at line {node.start_mark.line + 1}",
                "write the file out plainly, without anchors and aliases",
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            seen: dict[Any, int] = {}
            merged: list[yaml.MappingNode] = []
            for k_node, v_node in node.value:
                if k_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` (or a list of them)
                    sources = v_node.value if isinstance(v_node, yaml.SequenceNode) else [v_node]
                    if all(isinstance(x, yaml.MappingNode) for x in sources):
                        merged += sources
                    else:
                        self.problems.append(
                            Problem(_key(path + ("<<",)), "a mapping or a list of mappings to merge", "something else",
                                    line=k_node.start_mark.line + 1)
                        )  # fmt: skip
                    continue
                key = self._scalar(k_node, path) if isinstance(k_node, yaml.ScalarNode) else None
                line = k_node.start_mark.line + 1
                if isinstance(key, str) and key.startswith("x-"):  # an extension field: anchors live there
                    continue
                if not isinstance(key, str):
                    self.problems.append(Problem(_key(path + ("?",)), "a text key", key, line=line))
                    continue
                if key in seen:
                    self.problems.append(
                        Problem(
                            _key(path + (key,)),
                            "each key once",
                            f"it at lines {seen[key]} and {line}",
                            "remove one of the two (YAML would silently keep the last)",
                            line,
                        )
                    )
                    continue
                seen[key] = line
                self.lines[path + (key,)] = line
                out[key] = self.value(v_node, path + (key,), depth + 1)
            for source in merged:  # YAML's merge: a key written here wins, then the first source naming it
                for key, value in self.value(source, path, depth + 1).items():
                    out.setdefault(key, value)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self.raw[path] = str(node.value)
        try:
            return self._ctor.construct_object(node, deep=True)
        except Exception as e:  # noqa: BLE001 - PyYAML's constructors raise anything on odd tags (!!timestamp x)
            self.problems.append(
                Problem(
                    _key(path),
                    "a plain YAML value",
                    f"{node.tag} "
                    + ("<not shown>" if path and path[-1] in SECRET_KEYS else repr(node.value))
                    + f" ({type(e).__name__})",
                    "remove the tag (!!...) or write a plain value",
                    node.start_mark.line + 1,
                )
            )
            return None


def _key(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _read(file: str) -> tuple[str, bytes]:
    try:
        size = os.stat(file).st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                file,
                "(file)",
                f"an environment file of at most {MAX_FILE_BYTES // 1024} KiB",
                f"{size} bytes",
                "point --env at the deployment's environment file",
            )
        with open(file, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            file,
            "(file)",
            "an existing environment file",
            None,
            "pass --env PATH of a YAML file (see env.example.yaml)",
        ) from None
    except OSError as e:
        raise ConfigError(file, "(file)", "a readable file", str(e)) from None
    try:
        return data.decode("utf-8"), data
    except UnicodeDecodeError as e:
        raise ConfigError(file, "(file)", "a UTF-8 file", f"byte {e.start} is not UTF-8") from None


def _compose(file: str, text: str) -> _Composed:
    c = _Composed(file)
    if flow_depth(text) > MAX_DEPTH:
        raise ConfigError(file, "(syntax)", f"values nested at most {MAX_DEPTH} deep", "deeper nesting")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(file, "(syntax)", "valid YAML", f"{getattr(e, 'problem', None) or e} at {where}") from None
    except RecursionError:
        raise ConfigError(file, "(syntax)", f"values nested at most {MAX_DEPTH} deep", "deeper nesting") from None
    if node is None:
        raise ConfigError(file, "(top level)", "a mapping", None)
    c.doc = c.value(node, ())  # type: ignore[attr-defined]
    return c


# == validation ====================================================================================
SECRET_KEYS = ("password",)  # the keys whose value is a secret (metadb.password, console.password)
_HINTS = {
    "extra_forbidden": "remove or correct the key (a typo here is never ignored)",
    # a literal's own advice, by key
    "rehearsal.host": "the rehearsal runs on the machine it is started on: to rehearse on another one, install omsup "
    "there and run the rehearsal there, with rehearsal.host: local://",
}


def _problems_of(error: ValidationError, c: _Composed) -> list[Problem]:
    out = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        line = _line(c, loc)
        typ, ctx, seen = err["type"], err.get("ctx") or {}, err.get("input")
        if typ == "missing":
            out.append(Problem(_key(loc), "a value", None, line=line))
        elif typ == "extra_forbidden":
            known = sorted(_known_keys(loc[:-1]))
            out.append(
                Problem(
                    _key(loc), f"one of the known keys ({', '.join(known)})", loc[-1], _HINTS["extra_forbidden"], line
                )
            )
        elif typ == "omsup" and loc and loc[-1] in SECRET_KEYS:  # whatever YAML made of it, never shown
            kind = "a mapping" if isinstance(seen, dict) else f"a {type(seen).__name__}"
            out.append(
                Problem(
                    _key(loc),
                    ctx["what"],
                    f"<{kind}, not shown>",
                    ctx.get("hint")
                    or f"write {loc[-1]}: {{env: VARIABLE}}, {loc[-1]}: {{file: PATH}} or {loc[-1]}: {{command: "
                    "[program, arg, ...]}} (or quote an inline secret)",
                    line,
                )
            )
        elif typ == "omsup":
            hint = ctx.get("hint") or _number_hint(c, loc, seen)
            out.append(Problem(_key(loc), ctx["what"], seen, hint or None, line))
        elif typ in ("too_short", "list_type") and loc and loc[-1] in ("regions", "nodes"):
            out.append(Problem(_key(loc), f"a non-empty list of {loc[-1]}", seen, line=line))
        elif typ in ("model_type", "model_attributes_type", "dict_type"):
            out.append(Problem(_key(loc), "a mapping", seen, line=line))
        elif typ == "literal_error":
            choices = " or ".join(str(x).strip("'") for x in _literal_choices(ctx))
            out.append(Problem(_key(loc), choices, seen, _HINTS.get(_key(loc)), line=line))
        else:
            out.append(Problem(_key(loc), err["msg"], seen, line=line))
    return out


def _literal_choices(ctx: dict[str, Any]) -> list[str]:
    return [x.strip() for x in str(ctx.get("expected", "")).replace(" or ", ",").split(",") if x.strip()]


def _number_hint(c: _Composed, loc: tuple[Any, ...], seen: Any) -> str:
    """A name or path that YAML read as a number, a boolean or a date: say so and how to quote it."""
    raw = c.raw.get(loc)
    if raw is not None and not isinstance(seen, str) and seen is not None:
        return f'YAML read {raw!r} as {type(seen).__name__} {seen!r}: quote it ({loc[-1]}: "{raw}")'
    return ""


def _known_keys(loc: tuple[Any, ...]) -> set[str]:
    model: Any = EnvFile
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return set()
        inner = info.annotation
        for cand in (inner, *getattr(inner, "__args__", ())):
            for sub in (cand, *getattr(cand, "__args__", ())):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    model = sub
                    break
    return set(model.model_fields)


def _line(c: _Composed, loc: tuple[Any, ...]) -> int | None:
    for i in range(len(loc), -1, -1):
        if loc[:i] in c.lines:
            return c.lines[loc[:i]]
    return None


# == secrets =========================================================================================
def _secret(ref: Any, key: str, file: str, line: int | None, problems: list[Problem]) -> Secret | None:
    base = Path(file).resolve().parent
    if isinstance(ref, str):
        if VAR_REF_RE.fullmatch(ref.strip()):
            var = ref.strip().strip("${}")
            problems.append(
                Problem(
                    key,
                    "a secret reference {env: NAME} or {file: PATH} (or an inline string)",
                    "a ${VARIABLE} written as a literal password",
                    f"YAML does not expand variables: write {key.split('.')[-1]}: {{env: {var}}}",
                    line,
                )
            )
            return None
        return _checked_secret(Secret(f"{file}:{key} (inline)", ref), key, line, problems)
    kind, name = next(iter(ref.items()))
    if kind == "command":
        return _command_secret(name, key, line, problems)
    if kind == "env":
        value = os.environ.get(name)
        if not value:
            problems.append(
                Problem(
                    key,
                    f"the environment variable {name} to be set",
                    None,
                    f"export {name}=... (the secret) before running, or point '{key}' elsewhere",
                    line,
                )
            )
            return None
        return _checked_secret(Secret(f"env:{name}", value), key, line, problems)
    p = Path(name) if name.startswith("/") else base / name
    raw = _read_secret_file(p, key, name, line, problems)
    if raw is None:
        return None
    try:
        value = raw.decode("utf-8")
        value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
    except UnicodeDecodeError as e:
        problems.append(
            Problem(
                key,
                "a secret file in UTF-8",
                f"{name} (byte {e.start} is not UTF-8)",
                "write the secret in UTF-8, as the MetaDB and the console expect it",
                line,
            )
        )
        return None
    if not value:
        problems.append(Problem(key, "a non-empty secret file", name, line=line))
        return None
    return _checked_secret(Secret(f"file:{p}", value), key, line, problems)


SECRET_COMMAND_TIMEOUT = 60.0  # a Vault or cloud CLI answers in seconds; a prompt would wait for ever
MAX_SECRET_BYTES = 64 * 1024


def _command_secret(argv: list[str], key: str, line: int | None, problems: list[Problem]) -> Secret | None:
    """{command: [argv...]}: the program's standard output (one trailing newline dropped) is the secret. Run
    without a shell and without a terminal (stdin /dev/null: a program that would prompt fails at once), with a
    timeout; what it printed on stdout is never shown, its stderr only with the secret masked."""
    shown = " ".join(argv[:1] + ["..."] if len(argv) > 1 else argv)
    p = secret_source.run(argv, SECRET_COMMAND_TIMEOUT)
    if p.problem:
        hint = "install it or name it by its full path" if p.problem == "not found" else "make it executable"
        problems.append(Problem(key, f"a program to run ({argv[0]})", p.problem, hint, line))
        return None
    if p.timed_out:
        problems.append(
            Problem(
                key,
                f"the secret's command ({shown}) to answer within {SECRET_COMMAND_TIMEOUT:.0f} s",
                "no answer",
                "run it by hand: a login or an unlock it waits for (it has no terminal here) comes first",
                line,
            )
        )
        return None
    out = p.stdout[: MAX_SECRET_BYTES + 1]
    value = out.decode("utf-8", "replace")
    value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
    if p.rc != 0:
        err = p.stderr.decode("utf-8", "replace").strip()
        if value:
            err = err.replace(value, redact.MASK)
        problems.append(
            Problem(
                key,
                f"the secret's command ({shown}) to exit 0",
                f"exit {p.rc}" + (f": {redact.printable(err[-300:])}" if err else ""),
                "run it by hand and fix what it says",
                line,
            )
        )
        return None
    if len(out) > MAX_SECRET_BYTES or not value:
        problems.append(
            Problem(
                key,
                f"the secret's command ({shown}) to print one secret",
                "nothing" if not value else "more than 64 KiB",
                line=line,
            )
        )
        return None
    return _checked_secret(Secret(f"command:{argv[0]}", value), key, line, problems)


def _read_secret_file(p: Path, key: str, name: str, line: int | None, problems: list[Problem]) -> bytes | None:
    """The bytes of a {file:} secret, checked before a byte is read: a regular file (a FIFO would hang the
    load, /dev/zero would fill the memory), mode 0600 or 0400, owned by this user, at most 64 KiB."""
    try:  # O_NONBLOCK: a FIFO opens at once (and is then refused by its type), it is never waited on
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        problems.append(
            Problem(
                key, "a readable secret file", f"{name} ({e.strerror})", f"create {p} (mode 0600) or fix the path", line
            )
        )
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = (
                "a FIFO"
                if stat.S_ISFIFO(st.st_mode)
                else "a folder"
                if stat.S_ISDIR(st.st_mode)
                else "a device"
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "not a regular file"
            )
            problems.append(Problem(key, "a secret file that is a regular file", f"{p}: {kind}", None, line))
            return None
        if stat.S_IMODE(st.st_mode) & 0o077 or st.st_uid != os.getuid():
            problems.append(
                Problem(
                    key,
                    "a secret file of mode 0600 (or 0400) owned by you",
                    f"{p}: mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}",
                    f"chmod 600 {p}; chown {os.getuid()} {p}",
                    line,
                )
            )
            return None
        if st.st_size > MAX_SECRET_FILE:
            problems.append(
                Problem(
                    key,
                    f"a secret file of at most {MAX_SECRET_FILE // 1024} KiB",
                    f"{p}: {st.st_size} bytes",
                    None,
                    line,
                )
            )
            return None
        chunks, size = [], 0
        while size <= MAX_SECRET_FILE and (chunk := os.read(fd, MAX_SECRET_FILE + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_SECRET_FILE:  # it grew while it was read
            problems.append(
                Problem(key, f"a secret file of at most {MAX_SECRET_FILE // 1024} KiB", f"{p}: more", None, line)
            )
            return None
        return b"".join(chunks)
    except OSError as e:
        problems.append(Problem(key, "a readable secret file", f"{name} ({e.strerror})", None, line))
        return None
    finally:
        os.close(fd)


def _checked_secret(s: Secret, key: str, line: int | None, problems: list[Problem]) -> Secret | None:
    bad = [i for i, c in enumerate(s.value) if CONTROL_RE.fullmatch(c)]
    if bad:  # never echoed, not even in part: where, not what
        problems.append(
            Problem(
                key,
                "a secret without control characters (a newline, NUL, tab, escape ...)",
                f"{len(bad)} control character(s) in the secret from {s.source}, at position(s) "
                f"{', '.join(str(i + 1) for i in bad[:5])}{' ...' if len(bad) > 5 else ''}",
                "a MySQL option file, a shell and a log line would each cut it there; remove them (a file's single "
                "trailing newline is fine) or change the secret on the system that uses it",
                line,
            )
        )
        return None
    common = too_common(s.value)
    if common is not None:
        problems.append(
            Problem(
                key,
                "a secret that is not a common password or word",
                f"the secret from {s.source} is {common}",
                "masking it would also mask that word in every log line and report, and it is guessed first; "
                "change it on the system that uses it",
                line,
            )
        )
        return None
    if len(s.value) < MIN_SECRET_LENGTH:
        problems.append(
            Problem(
                key,
                f"a secret of at least {MIN_SECRET_LENGTH} characters",
                f"{len(s.value)} characters from {s.source}",
                "a shorter secret cannot be masked in reports without masking ordinary words too; "
                "change it on the system that uses it",
                line,
            )
        )
        return None
    return s


def _common(secret: Secret, key: str, values: list[str], line: int | None, problems: list[Problem]) -> None:
    """A secret that is part of the file's other values would mask names, paths and users in every report."""
    clash = next((v for v in values if secret.value in v), None)
    if clash is not None:
        problems.append(
            Problem(
                key,
                "a secret that no other value of the file contains",
                f"the secret from {secret.source} inside another value of the file",
                "change the secret: masking it would also mask names and paths in the report",
                line,
            )
        )


# == load ===========================================================================================
def load(path: str | os.PathLike[str], secrets: bool | Literal["if available"] = True) -> Environment:
    """Read and validate an environment file.

    With ``secrets=False`` the secret references are checked for their form only and not resolved (no
    variable read, no file opened): what reads only the state works for whoever may look, without the
    production passwords; their values are then empty and marked unresolved. With ``"if available"`` each
    secret is resolved where it can be (to mask it in what is shown) and left unresolved, silently, where it
    cannot (omsup status, unlock).

    Raises:
        ConfigError: every problem of the file, each with its line, key, what was expected and seen.
    """
    file = str(path)
    text, data = _read(file)
    c = _compose(file, text)
    doc = c.doc  # type: ignore[attr-defined]
    if not isinstance(doc, dict):
        raise ConfigError(file, "(top level)", "a mapping", doc)
    problems = list(c.problems)
    model: EnvFile | None = None
    try:
        model = EnvFile.model_validate(doc)
    except ValidationError as e:
        problems += _problems_of(e, c)
    if model is None:
        raise ConfigError.many(file, problems)
    env = _build(file, model, c, problems, hashlib.sha256(data).hexdigest(), secrets)
    if problems or env is None:
        raise ConfigError.many(file, problems)
    scratch_secret = [env.rehearsal.metadb.password] if env.rehearsal.metadb else []
    for s in (env.metadb.password, env.console.password, *scratch_secret):
        if s.resolved:
            redact.register(s.value)
    if env.console.password.resolved:
        redact.register_basic_auth(env.console.user, env.console.password.value)
    return env


def _unresolved(ref: Any, key: str) -> Secret:
    kind = next(iter(ref), "inline") if isinstance(ref, dict) else "inline"
    name = ref.get(kind) if isinstance(ref, dict) else None
    if isinstance(name, list):  # a command: its program names it
        name = name[0] if name else None
    return Secret(f"{kind}:{name} (not resolved)" if name else f"{key} (inline, not resolved)", "", resolved=False)


def _build(
    file: str, m: EnvFile, c: _Composed, problems: list[Problem], sha: str, secrets: bool | str = True
) -> Environment | None:
    def at(*loc: Any) -> int | None:
        return _line(c, loc)

    seen_nodes: dict[str, str] = {}
    seen_ips: dict[str, str] = {}
    seen_db = {m.metadb.rm: "metadb.rm", m.metadb.cm: "metadb.cm"}
    regions = []
    for i, rg in enumerate(m.regions):
        key = f"regions[{i}]"
        if rg.cm_hb in seen_db:
            problems.append(
                Problem(
                    f"{key}.cm_hb",
                    f"a database other than {seen_db[rg.cm_hb]}'s",
                    rg.cm_hb,
                    line=at("regions", i, "cm_hb"),
                )
            )
        seen_db.setdefault(rg.cm_hb, f"{key}.cm_hb")
        nodes = []
        for j, n in enumerate(rg.nodes):
            nkey, loc = f"{key}.nodes[{j}]", ("regions", i, "nodes", j)
            if n.name in seen_nodes:
                problems.append(
                    Problem(
                        f"{nkey}.name",
                        f"a name not used already (used at {seen_nodes[n.name]})",
                        n.name,
                        line=at(*loc, "name"),
                    )
                )
            ip = str(ipaddress.ip_address(n.ip))
            if ip in seen_ips:
                problems.append(
                    Problem(f"{nkey}.ip", f"an IP not used already (used at {seen_ips[ip]})", ip, line=at(*loc, "ip"))
                )
            seen_nodes.setdefault(n.name, nkey)
            seen_ips.setdefault(ip, nkey)
            if n.docker.startswith("tcp://") and n.tls is None and not n.insecure:
                problems.append(
                    Problem(
                        f"{nkey}.docker",
                        "a tcp:// engine with tls: {ca, cert, key} (or insecure: true)",
                        n.docker,
                        "give the engine's client certificates, or say insecure: true "
                        "deliberately (the engine then accepts anyone on the network)",
                        at(*loc, "docker"),
                    )
                )
            tls = TLS(n.tls.ca, n.tls.cert, n.tls.key) if n.tls else None
            nodes.append(
                Node(
                    n.name, ip, n.host, n.docker, rg.name, sudo=n.sudo, tls=tls, insecure=n.insecure,
                    engine_via=n.engine_via,
                )
            )  # fmt: skip
        regions.append(Region(rg.name, rg.cm_hb, tuple(nodes)))
    packages: dict[Version, str] = {}
    for v, p in m.packages.items():
        try:
            packages[Version.parse(v)] = p
        except VersionError:
            problems.append(Problem(f"packages.{v}", "a version such as 4.2.8-CE", v, line=at("packages", v)))

    def resolved(ref: Any, key: str) -> Secret | None:
        # a command (Vault, a cloud CLI) runs only where the secret is needed, never to mask one for a reader
        if not secrets or (secrets == "if available" and isinstance(ref, dict) and "command" in ref):
            return _unresolved(ref, key)
        mine: list[Problem] = []
        found = _secret(ref, key, file, at(*key.split(".")), mine)
        if found is None and secrets == "if available":
            return _unresolved(ref, key)
        problems.extend(mine)
        return found

    meta_pw = resolved(m.metadb.password, "metadb.password")
    console_pw = resolved(m.console.password, "console.password")
    scratch = m.rehearsal.metadb
    scratch_pw = resolved(scratch.password, "rehearsal.metadb.password") if scratch else None
    others = [
        m.name,
        m.container,
        m.metadb.user,
        m.metadb.rm,
        m.metadb.cm,
        m.console.user,
        m.backup.dir,
        m.backup.host,
        m.state_dir or "",
        *[r.name for r in m.regions],
        *[r.cm_hb for r in m.regions],
        *[x for r in m.regions for n in r.nodes for x in (n.name, n.host, n.docker)],
        *m.packages.values(),
    ]
    checks: list[tuple[Secret | None, str, tuple[Any, ...]]] = [
        (meta_pw, "metadb.password", ("metadb", "password")),
        (console_pw, "console.password", ("console", "password")),
        (scratch_pw, "rehearsal.metadb.password", ("rehearsal", "metadb", "password")),
    ]
    for s, key, loc in checks:
        if s is not None and s.resolved:
            _common(s, key, others, at(*loc), problems)
    if meta_pw is None or console_pw is None or (scratch is not None and scratch_pw is None) or problems:
        return None
    state_dir = m.state_dir or str(
        Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "omsup" / m.name
    )
    return Environment(
        source=str(Path(file).resolve()),
        name=m.name,
        container=m.container,
        version=Version.parse(m.version) if m.version is not None else None,
        packages=packages,
        metadb=MetaDB(
            m.metadb.host,
            m.metadb.port,
            m.metadb.user,
            meta_pw,
            m.metadb.rm,
            m.metadb.cm,
            m.metadb.ssl_ca,
            m.metadb.unlisted_engine_reason,
        ),
        regions=tuple(regions),
        backup=Backup(m.backup.host, m.backup.dir),
        ha=HA(m.ha.perceive_store_client_checkpoint, m.ha.refetch_margin_min),
        console=Console(m.console.port, m.console.scheme, m.console.user, console_pw, m.console.ca_file),
        state_dir=state_dir,
        sha256=sha,
        work_dir=m.work_dir,
        rehearsal=Rehearsal(
            m.rehearsal.host,
            m.rehearsal.dir,
            m.rehearsal.seekdb,
            m.rehearsal.subnet,
            m.rehearsal.max_age_hours,
            tuple(m.rehearsal.dockerd_args),
            m.rehearsal.below_requirements_reason,
            MetaDB(scratch.host, scratch.port, scratch.user, scratch_pw, m.metadb.rm, m.metadb.cm)
            if scratch is not None and scratch_pw is not None
            else None,
        ),
    )
