"""A node's container engine: the docker SDK for requests, the docker CLI on the node for exec and load.

One choke point for SDK requests: ``_call`` records every engine request once and turns engine
errors into ``ContainerProblem`` with the node, the request and what the engine said. What the
documents have the operator type on the node (``docker exec``, ``docker load -i``) runs there
through the node's host adapter, whose choke point records it.

API versions: the SDK negotiates with the engine (``version="auto"``), down to the documented
baseline, Docker 1.13 (API 1.26; OD V4.2.2 system requirements). The SDK's ssh transport needs
`docker system dial-stdio` on the node, which Docker has from 18.09 (API 1.39): a node reached over
SSH whose engine is older, or whose env file says ``engine_via: cli``, has every request made with
the docker CLI on the node instead (``docker inspect``, ``docker stop`` ...), through the host's
choke point, with the same verbs and answers.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from typing import Any, TypeVar

import docker
import docker.errors
import docker.tls
import docker.types
import requests

from .. import audit
from ..container_spec import ContainerSpec
from ..envfile import TLS
from ..errors import ContainerProblem
from ..redact import excerpt, redact
from . import ssh
from .hosts import Host
from .lazy import cached

T = TypeVar("T")


# a dropped connection of the ssh transport (a pooled connection gone): an idempotent request is sent once more
LOST = (BrokenPipeError, ConnectionError, requests.exceptions.ConnectionError)
DIAL_STDIO_API = (1, 39)  # Docker 18.09: `docker system dial-stdio`, which the SDK's ssh transport needs


def api_tuple(text: Any) -> tuple[int, int]:
    """An API version such as 1.41 as (1, 41); anything else as (0, 0)."""
    parts = str(text).strip().split(".")
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 and all(p.isdigit() for p in parts) else (0, 0)


def run_kwargs(spec: ContainerSpec) -> dict[str, Any]:
    """Keyword arguments of docker SDK ``containers.run`` equal to the documented flags (ContainerSpec.argv)."""
    return {
        "image": spec.image,
        "name": spec.name,
        "detach": True,
        "tty": True,
        "stdin_open": True,
        "network_mode": "host",
        "volumes": list(spec.binds),
        "environment": spec.environment(),
        "privileged": True,
        "pids_limit": -1,
        "ulimits": [docker.types.Ulimit(name="nproc", soft=65535, hard=65535)],
        "labels": dict(spec.labels),
    }


class _Lost(Exception):
    """The first attempt of an idempotent request lost its connection (recorded); it is sent once more."""


class _CliImage:
    """An image as `docker image inspect` shows it, with the two attributes the verbs read (as the SDK's)."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.id = str(attrs.get("Id", ""))
        self.tags = [t for t in attrs.get("RepoTags") or [] if isinstance(t, str)]


class Engine:
    def __init__(self, url: str, label: str, host: Host, tls: TLS | None = None, via: str = "auto") -> None:
        self.url = url
        self.label = label
        self.node = label
        self.host = host  # where the docker CLI runs (and, for ssh, the transport)
        self.tls = tls
        self.via_setting = via  # auto | sdk | cli (the environment file's engine_via)
        self._relay: ssh.DialStdio | None = None

    @cached
    def via_cli(self) -> bool:
        """Whether requests go through the docker CLI on the node: said so in the environment file, or an engine
        behind SSH older than Docker 18.09 (no `docker system dial-stdio`, the SDK's ssh transport)."""
        if self.via_setting != "auto":
            return self.via_setting == "cli"
        if self.url.startswith("tcp://") or (self.host.is_local and not self.url.startswith("ssh://")):
            return False
        r = self.host.run(self._cli() + " version --format '{{.Server.APIVersion}}'", quiet=True)
        api = api_tuple(r.stdout) if r.rc == 0 else (0, 0)
        return (0, 0) < api < DIAL_STDIO_API

    @cached
    def client(self) -> docker.DockerClient:
        """The SDK's client; making it asks the engine its API version (a request, recorded)."""
        with audit.call("engine", self.label, "connect (the API version negotiated)", self.node) as rec:
            c = self._new_client()
            rec.outcome = f"API {c.api.api_version}"
        return c

    def _new_client(self) -> docker.DockerClient:
        # the API version is negotiated with the engine (recent engines refuse an old pinned one)
        if self.url.startswith("tcp://"):
            tls = None
            if self.tls is not None:  # verified both ways: the engine's certificate and ours
                tls = docker.tls.TLSConfig(client_cert=(self.tls.cert, self.tls.key), ca_cert=self.tls.ca, verify=True)
            return docker.DockerClient(base_url=self.url, tls=tls or False, timeout=120, version="auto")
        if self.url.startswith("ssh://") or not self.host.is_local:
            # the same OpenSSH transport as the host's commands: `docker system dial-stdio` on the node
            target = ssh.resolve(self.url if self.url.startswith("ssh://") else self.host.spec)
            remote = "docker system dial-stdio"
            if self.url.startswith("unix://"):
                remote = f"env DOCKER_HOST={shlex.quote(self.url)} {remote}"
            if self.host.sudo:
                remote = f"sudo -n {remote}"
            self._relay = ssh.DialStdio(target, remote)
            return docker.DockerClient(base_url=self._relay.url, timeout=120, version="auto")
        return docker.DockerClient(base_url=self.url, timeout=120, version="auto")

    def transport_error(self) -> str:
        """What the ssh transport said last (a refused host key, a refused login), for messages."""
        return f" (ssh: {self._relay.last_error})" if self._relay is not None and self._relay.last_error else ""

    def _attempt(self, action: str, fn: Callable[[], T], outcome: Callable[[T], str], last: bool) -> T:
        with audit.call("engine", self.label, action, self.node) as rec:
            try:
                result = fn()
            except docker.errors.NotFound:
                rec.failure = "not found"
                raise
            except LOST as e:
                if not last:
                    rec.failure = f"connection lost ({e}); retrying once"
                    raise _Lost from e
                raise self._problem(action, e) from e
            except Exception as e:
                raise self._problem(action, e) from e
            rec.outcome = outcome(result)
            return result

    def _problem(self, action: str, e: Exception) -> ContainerProblem:
        return ContainerProblem(
            f"engine of {self.label} ({self.url}): {action} failed: {type(e).__name__}: {redact(e)}"
            f"{self.transport_error()}",
            "check that the node's Docker engine runs and is reachable from here",
        )

    def _call(
        self, action: str, fn: Callable[[], T], outcome: Callable[[T], str] = lambda _: "ok", retry: bool = True
    ) -> T:
        """One request, recorded. The ssh transport drops pooled connections now and then (broken pipe): an
        idempotent request (``retry``) is sent once more on a fresh client, and both attempts are recorded."""
        try:
            return self._attempt(action, fn, outcome, last=not retry)
        except _Lost:
            self.close()
            return self._attempt(action, fn, outcome, last=True)

    # -- requests ----------------------------------------------------------------------------
    def ping(self) -> bool:
        if self.via_cli:
            self._cli_json("version", "--format", "{{json .Server}}")
            return True
        return bool(self._call("ping", lambda: self.client.ping()))

    def api_version(self) -> str:
        """The API version the client speaks with this engine (negotiated; the CLI's, through the CLI)."""
        if self.via_cli:
            return f"{self.version().get('ApiVersion')} (docker CLI on the node)"
        return str(self.client.api.api_version)

    def version(self) -> dict[str, Any]:
        """The engine's version facts (Version, ApiVersion, MinAPIVersion)."""
        if self.via_cli:
            server = self._cli_json("version", "--format", "{{json .Server}}")
            return dict(server) if isinstance(server, dict) else {}
        facts: dict[str, Any] = dict(self._call("version", lambda: self.client.version()))
        return facts

    def inspect(self, name: str) -> dict[str, Any] | None:
        """The container's inspect data, or None if there is none of that name."""
        if self.via_cli:
            return self._cli_inspect("container", name)
        try:
            c = self._call(
                f"inspect container {name}",
                lambda: self.client.containers.get(name),
                lambda c: f"{c.status}, image {c.attrs['Config']['Image']}",
            )
        except docker.errors.NotFound:
            return None
        return dict(c.attrs)

    def _image(self, ref: str) -> Any | None:
        if self.via_cli:
            attrs = self._cli_inspect("image", ref)
            return None if attrs is None else _CliImage(attrs)
        try:
            return self._call(f"inspect image {ref[:40]}", lambda: self.client.images.get(ref))
        except docker.errors.NotFound:
            return None

    def image_tags(self, image_id: str) -> list[str]:
        img = self._image(image_id)
        return list(img.tags) if img is not None else []

    def image_env(self, image_id: str) -> list[str]:
        """The environment an image sets by default (Config.Env of the image)."""
        img = self._image(image_id)
        env = ((img.attrs.get("Config") or {}).get("Env") or []) if img is not None else []
        return [x for x in env if isinstance(x, str)]

    def image_size(self, ref: str) -> int | None:
        """The image's size in bytes as the engine reports it (Size), or None."""
        img = self._image(ref)
        size = img.attrs.get("Size") if img is not None else None
        return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None

    def has_image(self, ref: str) -> bool:
        return self._image(ref) is not None

    def image_id(self, ref: str) -> str | None:
        img = self._image(ref)
        return str(img.id) if img is not None else None

    def _on(
        self,
        name: str,
        action: str,
        op: Callable[[Any], T],
        outcome: Callable[[T], str] = lambda _: "ok",
        retry: bool = True,
    ) -> T:
        """``op(container)`` as one request; the container is looked up on the current client, so a
        retry after a dropped connection runs on a fresh one."""
        return self._call(action, lambda: op(self.client.containers.get(name)), outcome, retry)

    def stop(self, name: str, timeout: int = 60) -> None:
        if self.via_cli:
            self._cli_check("stop", "-t", str(timeout), name)
            return
        self._on(name, f"docker stop {name}", lambda c: c.stop(timeout=timeout))

    def start(self, name: str) -> None:
        if self.via_cli:
            self._cli_check("start", name)
            return
        self._on(name, f"docker start {name}", lambda c: c.start())

    def rename(self, name: str, new: str) -> None:
        if self.via_cli:
            self._cli_check("rename", name, new)
            return
        self._on(name, f"docker rename {name} {new}", lambda c: c.rename(new), retry=False)

    def run(self, spec: ContainerSpec) -> dict[str, Any]:
        if self.via_cli:
            cid = self._cli_check(*spec.argv()[1:]).strip().splitlines()[-1].strip()
            return self.inspect(cid) or {}
        c = self._call(
            spec.command_line(),
            lambda: self.client.containers.run(**run_kwargs(spec)),
            lambda c: f"created {c.short_id}",
            retry=False,
        )
        return self.inspect(c.id) or {}

    def logs(self, name: str, tail: int = 20) -> str:
        if self.via_cli:
            r = self.host.run(self._cli() + " logs --tail %s %s", str(tail), name, quiet=True)
            return redact(r.stdout + r.stderr) if r.rc == 0 else f"(logs unavailable: exit {r.rc})"
        try:
            raw = self._on(
                name,
                f"docker logs --tail {tail} {name}",
                lambda c: c.logs(tail=tail) or b"",
                lambda b: f"{len(b)} bytes",
            )
        except Exception as e:  # noqa: BLE001 - logs are evidence for a message, never the failure itself
            return f"(logs unavailable: {redact(e)})"
        return redact(raw.decode("utf-8", errors="replace"))

    # -- requests through the docker CLI on the node (engines the SDK's ssh transport cannot reach) ----
    def _cli_check(self, *args: str) -> str:
        """`docker ARGS...` on the node; its stdout, or the engine's words as a ContainerProblem."""
        r = self.host.run(self._cli() + " %s" * len(args), *args)
        if r.rc != 0:
            raise ContainerProblem(
                f"engine of {self.label} ({self.url}, through the docker CLI on the node): docker "
                f"{' '.join(args[:2])} ... exited {r.rc}: {redact(r.stderr.strip())[-500:]}",
                "check that the node's Docker engine runs and the SSH user may use it",
            )
        return r.stdout

    def _cli_json(self, *args: str) -> Any:
        out = self._cli_check(*args)
        try:
            return json.loads(out)
        except ValueError:
            raise ContainerProblem(
                f"engine of {self.label}: docker {' '.join(args[:2])} answered {excerpt(out)!r}, not JSON",
                "check the docker CLI on the node",
            ) from None

    def _cli_inspect(self, kind: str, ref: str) -> dict[str, Any] | None:
        """`docker inspect --type KIND REF`: its object, or None where there is none."""
        r = self.host.run(self._cli() + " inspect --type %s -- %s", kind, ref, quiet=True)
        if r.rc != 0:
            if "no such" in (r.stderr + r.stdout).lower():
                return None
            raise ContainerProblem(
                f"engine of {self.label} (through the docker CLI on the node): docker inspect {ref[:40]} exited "
                f"{r.rc}: {redact(r.stderr.strip())[-500:]}",
                "check that the node's Docker engine runs and the SSH user may use it",
            )
        try:
            found = json.loads(r.stdout)
        except ValueError:
            found = None
        if not isinstance(found, list) or not found or not isinstance(found[0], dict):
            raise ContainerProblem(f"engine of {self.label}: docker inspect {ref[:40]} answered {excerpt(r.stdout)!r}")
        return dict(found[0])

    # -- the docker CLI on the node ------------------------------------------------------------
    def cli_env(self) -> str:
        """What a command line on the node starts with so that every `docker` in it (a chain, a script's) talks
        to the node's engine (a unix socket URL names a socket on the node; otherwise the node's own default
        engine): ``export DOCKER_HOST=...; `` or nothing."""
        return f"export DOCKER_HOST={shlex.quote(self.url)}; " if self.url.startswith("unix://") else ""

    def _cli(self) -> str:
        """`docker` on the node, talking to the node's engine."""
        return self.cli_env() + "docker"

    def exec(self, container: str, *cmd: str) -> tuple[int, str]:
        """doc 004: `docker exec ${CONTAINER_NAME} ...`, run on the node: (exit code, output).

        On the node rather than through the SDK: the SDK's ssh transport breaks exec streams
        now and then (broken pipe), and this is what the document has the operator type.
        """
        r = self.host.run(self._cli() + " exec %s" + " %s" * len(cmd), container, *cmd)
        return r.rc, r.stdout + r.stderr

    def cli_ps(self, container: str) -> tuple[int, str]:
        """`docker ps -a --filter name=...` on the node, as the node's user (the CLI works there)."""
        r = self.host.run(self._cli() + " ps -a --filter name=%s --format '{{.Names}} {{.Status}}'", container)
        return r.rc, r.stdout + r.stderr

    def save_image(self, image_id: str, dest: str) -> int:
        """`docker save` of ``image_id`` (its tags with it) into ``dest`` on this machine, streamed from the engine
        (whatever its transport); never over an existing file. Its size in bytes."""
        if os.path.lexists(dest):
            raise FileExistsError(f"{dest}: the saved image is never written over a file")
        if self.via_cli:  # `docker save ID` on the node, its output streamed to this machine over the host's transport
            partial = dest + ".partial"
            r = self.host.stream_to_file(partial, self._cli() + " save %s", image_id)
            if r.rc != 0:
                raise ContainerProblem(
                    f"engine of {self.label} (through the docker CLI on the node): docker save {image_id[:19]} exited "
                    f"{r.rc}: {redact(r.stderr.strip())[-500:]} (what came is kept in {partial})",
                    "check that the node's Docker engine runs and the SSH user may use it, and the free space here",
                )
            os.link(partial, dest)  # never over an existing file
            os.unlink(partial)
            return os.path.getsize(dest)

        def save() -> int:
            n = 0
            partial = dest + ".partial"
            with open(partial, "xb") as f:
                for chunk in self.client.images.get(image_id).save(named=True):
                    f.write(chunk)
                    n += len(chunk)
            os.link(partial, dest)  # never over an existing file
            os.unlink(partial)
            return n

        return self._call(f"docker save {image_id[:19]} > {dest}", save, lambda n: f"{n} bytes", retry=False)

    def load_archive(self, path: str) -> str:
        """doc 004: `docker load -i <installation package>` on the node; returns what docker printed."""
        return self.host.check(self._cli() + " load -i %s", path, what="docker load")

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]
        if self._relay is not None:
            self._relay.close()
            self._relay = None
