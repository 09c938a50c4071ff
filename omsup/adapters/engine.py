"""A node's container engine: the docker SDK for requests, the docker CLI on the node for exec and load.

One choke point for SDK requests: ``_call`` records every engine request once and turns engine
errors into ``ContainerProblem`` with the node, the request and what the engine said. What the
documents have the operator type on the node (``docker exec``, ``docker load -i``) runs there
through the node's host adapter, whose choke point records it.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import Any, TypeVar

import docker
import docker.errors
import docker.tls
import requests

from ..audit import AUDIT
from ..container_spec import ContainerSpec
from ..envfile import TLS
from ..errors import ContainerProblem
from ..redact import redact
from . import ssh
from .hosts import Host
from .lazy import cached

T = TypeVar("T")


class Engine:
    def __init__(self, url: str, label: str, host: Host, tls: TLS | None = None) -> None:
        self.url = url
        self.label = label
        self.node = label
        self.host = host  # where the docker CLI runs (and, for ssh, the transport)
        self.tls = tls
        self._relay: ssh.DialStdio | None = None

    @cached
    def client(self) -> docker.DockerClient:
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

    def _call(
        self, action: str, fn: Callable[[], T], outcome: Callable[[T], str] = lambda _: "ok", retry: bool = True
    ) -> T:
        t0 = time.monotonic()
        try:
            try:
                result = fn()
            except (BrokenPipeError, ConnectionError, requests.exceptions.ConnectionError) as e:
                # The ssh transport drops pooled connections now and then (broken pipe): an
                # idempotent request is sent once more on a fresh client.
                if not retry:
                    raise
                AUDIT.record(
                    "engine",
                    self.label,
                    action,
                    f"connection lost ({e}); retrying once",
                    time.monotonic() - t0,
                    node=self.node,
                )
                self.close()
                result = fn()
        except docker.errors.NotFound:
            AUDIT.record("engine", self.label, action, "not found", time.monotonic() - t0, node=self.node)
            raise
        except Exception as e:
            AUDIT.record("engine", self.label, action, f"failed: {e}", time.monotonic() - t0, node=self.node)
            raise ContainerProblem(
                f"engine of {self.label} ({self.url}): {action} failed: {type(e).__name__}: {redact(e)}"
                f"{self.transport_error()}",
                "check that the node's Docker engine runs and is reachable from here",
            ) from e
        AUDIT.record("engine", self.label, action, outcome(result), time.monotonic() - t0, node=self.node)
        return result

    # -- requests ----------------------------------------------------------------------------
    def ping(self) -> bool:
        return bool(self._call("ping", lambda: self.client.ping()))

    def api_version(self) -> str:
        """The API version the client speaks with this engine (negotiated)."""
        return str(self.client.api.api_version)

    def version(self) -> dict[str, Any]:
        """The engine's version facts (Version, ApiVersion, MinAPIVersion)."""
        facts: dict[str, Any] = dict(self._call("version", lambda: self.client.version()))
        return facts

    def inspect(self, name: str) -> dict[str, Any] | None:
        """The container's inspect data, or None if there is none of that name."""
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
        self._on(name, f"docker stop {name}", lambda c: c.stop(timeout=timeout))

    def start(self, name: str) -> None:
        self._on(name, f"docker start {name}", lambda c: c.start())

    def rename(self, name: str, new: str) -> None:
        self._on(name, f"docker rename {name} {new}", lambda c: c.rename(new), retry=False)

    def run(self, spec: ContainerSpec) -> dict[str, Any]:
        c = self._call(
            spec.command_line(),
            lambda: self.client.containers.run(**spec.run_kwargs()),
            lambda c: f"created {c.short_id}",
            retry=False,
        )
        return self.inspect(c.id) or {}

    def logs(self, name: str, tail: int = 20) -> str:
        try:
            c = self.client.containers.get(name)
            return redact((c.logs(tail=tail) or b"").decode("utf-8", errors="replace"))
        except Exception as e:  # noqa: BLE001 - logs are evidence for a message, never the failure itself
            return f"(logs unavailable: {redact(e)})"

    # -- the docker CLI on the node ------------------------------------------------------------
    def _cli(self) -> str:
        """`docker` on the node, talking to the node's engine (a unix socket URL names a socket on the node)."""
        return f"DOCKER_HOST={self.url} docker" if self.url.startswith("unix://") else "docker"

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
