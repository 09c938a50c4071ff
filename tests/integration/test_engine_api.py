"""Issue 13 point 8: the Docker API version is negotiated with the engine, never pinned.

An engine refuses a client that speaks a version above its maximum ("client version X is too new")
and, on recent engines (25 and later), one below its minimum ("client version 1.41 is too old").
The first is shown on the sandbox's real engines; the second through a relay in front of a real
engine that refuses, with the engine's words and status, every versioned path below the engine's own
API version, as an engine with MinAPIVersion = ApiVersion would.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import threading
from pathlib import Path

import docker
import docker.constants
import docker.errors
import pytest

from omsup.adapters.engine import Engine
from omsup.adapters.hosts import Host
from omsup.errors import ContainerProblem

from .conftest import STATE

pytestmark = pytest.mark.integration

VERSIONED = re.compile(rb"^[A-Z]+ /v(\d+)\.(\d+)/")


def vkey(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


class MinVersionRelay:
    """A Unix socket in front of an engine's socket that refuses API versions below `minimum`."""

    def __init__(self, upstream: str, minimum: str) -> None:
        self.upstream, self.minimum = upstream, minimum
        self.dir = tempfile.mkdtemp(prefix="relay-", dir="/tmp")
        self.path = os.path.join(self.dir, "docker.sock")
        self.url = f"unix://{self.path}"
        self.refused: list[str] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            m = VERSIONED.match(head)
            if m and (int(m[1]), int(m[2])) < vkey(self.minimum):
                asked = f"{int(m[1])}.{int(m[2])}"
                self.refused.append(asked)
                body = (
                    f'{{"message":"client version {asked} is too old. Minimum supported API version is '
                    f'{self.minimum}, please upgrade your client to a newer version"}}\n'
                ).encode()
                conn.sendall(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                return
            # one request per connection: the engine closes after its answer, the client opens anew
            lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
            head = b"\r\n".join([*lines, b"Connection: close"])
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as up:
                up.connect(self.upstream)
                up.sendall(head + b"\r\n\r\n" + rest)

                def pump() -> None:
                    try:
                        while chunk := conn.recv(65536):
                            up.sendall(chunk)
                    except OSError:
                        pass

                threading.Thread(target=pump, daemon=True).start()
                while chunk := up.recv(65536):
                    conn.sendall(chunk)

    def close(self) -> None:
        self.server.close()
        Path(self.path).unlink(missing_ok=True)
        os.rmdir(self.dir)


def engine_api(url: str) -> str:
    raw = docker.APIClient(base_url=url, version="auto", timeout=30)
    try:
        return str(raw.version()["ApiVersion"])
    finally:
        raw.close()


def assert_adapter_speaks(url: str, api: str) -> None:
    """The engine adapter on ``url`` speaks API version ``api`` and its requests are answered."""
    eng = Engine(url, "n1", Host("local://", "n1"))
    try:
        assert eng.client.api.api_version == api
        seen = eng.inspect("oms_ce")
        assert seen is not None and seen["Name"] == "/oms_ce"
    finally:
        eng.close()


def test_the_api_version_is_negotiated_where_a_pinned_one_is_refused(sandbox):
    sandbox.fresh()
    sock = str(STATE / "nodes" / "n1" / "docker.sock")
    api = engine_api(f"unix://{sock}")
    major, minor = vkey(api)

    # an engine refuses a client pinned above its maximum (docker-py's own default is one, here)
    newer = f"{major}.{minor + 1}"
    pinned = docker.DockerClient(base_url=f"unix://{sock}", version=newer, timeout=30)
    with pytest.raises(docker.errors.APIError, match=rf"client version {re.escape(newer)} is too new"):
        pinned.containers.list()
    pinned.close()

    # the adapter asks the engine which version it speaks and speaks that one
    assert_adapter_speaks(f"unix://{sock}", api)

    # an engine whose minimum is its own version (recent engines refuse 1.41 this way)
    relay = MinVersionRelay(sock, api)
    try:
        older = f"{major}.{minor - 1}"
        old = docker.DockerClient(base_url=relay.url, version=older, timeout=30)
        with pytest.raises(docker.errors.APIError, match=rf"client version {re.escape(older)} is too old"):
            old.containers.list()
        old.close()
        assert relay.refused == [older]

        pinned_eng = Engine(relay.url, "n1", Host("local://", "n1"))
        pinned_eng.__dict__["client"] = docker.DockerClient(base_url=relay.url, version=older, timeout=30)
        with pytest.raises(ContainerProblem, match="too old") as refused:
            pinned_eng.inspect("oms_ce")
        assert "engine of n1" in str(refused.value)  # the adapter's message names the node and the request
        pinned_eng.close()

        assert_adapter_speaks(relay.url, api)
        assert relay.refused == [older, older]  # nothing the negotiating adapter sent was refused
    finally:
        relay.close()


class OldEngineRelay:
    """A Unix socket in front of a real engine's socket that answers as an engine of API ``api`` (Docker 1.13 is
    1.26, the documented baseline): /_ping and /version say ``api``, and every versioned path above it is refused
    with the engine's words ("client version X is too new"), as such an engine would. The real engine behind
    (API 1.41) serves the older paths. One request per connection."""

    def __init__(self, upstream: str, api: str = "1.26") -> None:
        self.upstream, self.api = upstream, api
        self.dir = tempfile.mkdtemp(prefix="old-engine-", dir="/tmp")
        self.path = os.path.join(self.dir, "docker.sock")
        self.url = f"unix://{self.path}"
        self.refused: list[str] = []
        self.seen: list[str] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(64)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.seen.append(line)
            m = VERSIONED.match(head)
            if m and (int(m[1]), int(m[2])) > vkey(self.api):
                asked = f"{int(m[1])}.{int(m[2])}"
                self.refused.append(asked)
                body = (
                    f'{{"message":"client version {asked} is too new. Maximum supported API version is {self.api}"}}\n'
                ).encode()
                conn.sendall(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                return
            lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
            head = b"\r\n".join([*lines, b"Connection: close"])
            path = line.split(" ")[1] if " " in line else ""
            about_version = path.split("?")[0].endswith(("/_ping", "/version"))
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as up:
                up.connect(self.upstream)
                up.sendall(head + b"\r\n\r\n" + rest)

                def pump() -> None:
                    try:
                        while chunk := conn.recv(65536):
                            up.sendall(chunk)
                    except OSError:
                        pass

                threading.Thread(target=pump, daemon=True).start()
                if not about_version:
                    while chunk := up.recv(65536):
                        conn.sendall(chunk)
                    return
                answer = b""
                while chunk := up.recv(65536):
                    answer += chunk
                conn.sendall(self._as_old(answer))

    def _as_old(self, answer: bytes) -> bytes:
        """The engine's /_ping or /version answer as an engine of API ``self.api`` gives it."""
        head, _, body = answer.partition(b"\r\n\r\n")
        head = re.sub(rb"(?im)^api-version: [0-9.]+", f"Api-Version: {self.api}".encode(), head)
        if body.lstrip().startswith(b"{"):
            doc = json.loads(body)
            doc["ApiVersion"], doc["MinAPIVersion"], doc["Version"] = self.api, "1.12", "1.13.1"
            body = json.dumps(doc).encode()
            head = re.sub(rb"(?im)^content-length: \d+", f"Content-Length: {len(body)}".encode(), head)
        return head + b"\r\n\r\n" + body

    def close(self) -> None:
        self.server.close()
        Path(self.path).unlink(missing_ok=True)
        os.rmdir(self.dir)


def test_engines_answering_api_1_26_the_documented_baseline_are_driven_at_1_26(sandbox):
    """OD V4.2.2 system requirements: CentOS 7 and Docker >= 1.13 (API 1.26). The upgrade and the rollback run
    through engines that speak 1.26 only: every request the runbooks make (the SDK's and the docker CLI's on
    the node) asks for 1.26 or older, none is refused, and the probe passes (its floor is 1.26)."""
    from .test_upgrade_429 import assert_passed

    sandbox.fresh()
    relays = {n: OldEngineRelay(str(STATE / "nodes" / n / "docker.sock")) for n in ("n1", "n2")}
    try:
        env = sandbox.edited_env(lambda d: [n.update(docker=relays[n["name"]].url) for n in d["regions"][0]["nodes"]])
        assert_passed(sandbox.runbook("probe", env_file=env), 1)
        assert_passed(sandbox.runbook("upgrade_429", env_file=env), 11)
        assert_passed(sandbox.runbook("rollback_429", env_file=env), 8)
        for r in relays.values():
            assert r.refused == [] and len(r.seen) > 20
            asked = [(int(m[1]), int(m[2])) for s in r.seen if (m := VERSIONED.match(s.encode()))]
            assert asked and max(asked) <= (1, 26), max(asked)
    finally:
        for r in relays.values():
            r.close()


def test_the_docker_cli_on_the_node_drives_the_upgrade_and_the_rollback(sandbox):
    """engine_via: cli (chosen by itself for an engine behind SSH older than Docker 18.09, which has no
    `docker system dial-stdio` for the SDK's ssh transport): every engine request is a docker CLI command on
    the node, and the upgrade and the rollback complete."""
    from .conftest import assert_restored
    from .test_upgrade_429 import assert_passed

    sandbox.fresh()
    earlier = set(sandbox.reports.glob("*_429-sandbox-*"))
    env = sandbox.edited_env(lambda d: [n.update(engine_via="cli") for n in d["regions"][0]["nodes"]])
    assert_passed(sandbox.runbook("upgrade_429", "--until", "4", env_file=env), 5)
    at_backup = sandbox.snapshot()
    assert_passed(sandbox.runbook("upgrade_429", env_file=env), 11)
    assert_passed(sandbox.runbook("rollback_429", env_file=env), 8)
    assert_restored(at_backup, sandbox.snapshot())
    ours = set(sandbox.reports.glob("*_429-sandbox-*")) - earlier
    events = "".join((p / "events.jsonl").read_text() for p in ours)
    systems = {json.loads(x)["system"] for x in events.splitlines()}
    assert "engine" not in systems, "an SDK request was made"
    for verb in ("docker inspect --type container", "docker run -dit", "docker stop", "docker start", "docker rename"):
        assert verb in events, verb


def test_an_image_is_saved_to_this_machine_through_the_docker_cli_over_ssh(sandbox, tmp_path):
    """What the rehearsal takes of an engine driven through the docker CLI on the node (engine_via: cli): `docker
    save ID` on the node, its output streamed here over the node's SSH transport; the archive names the same image
    as the SDK's save of the same engine, and nothing is written over."""
    import tarfile

    import yaml

    from omsup.adapters.engine import Engine
    from omsup.adapters.hosts import Host

    sandbox.fresh("--ssh", "--nodes", "1")
    node = yaml.safe_load(Path(sandbox.env_file).read_text())["regions"][0]["nodes"][0]
    assert node["host"].startswith("ssh://"), node
    image_id = sandbox.engine("n1").containers.get("oms_ce").image.id
    via_cli = Engine(node["docker"], "n1", Host(node["host"], "n1"), via="cli")
    via_sdk = Engine(f"unix://{STATE / 'nodes' / 'n1' / 'docker.sock'}", "n1", Host("local://", "n1"), via="sdk")

    def config_of(archive: Path) -> str:
        with tarfile.open(archive) as t:
            manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        return manifest[0]["Config"]

    size = via_cli.save_image(image_id, str(tmp_path / "cli.tar"))
    assert size == (tmp_path / "cli.tar").stat().st_size > 1_000_000 and not (tmp_path / "cli.tar.partial").exists()
    via_sdk.save_image(image_id, str(tmp_path / "sdk.tar"))
    assert config_of(tmp_path / "cli.tar") == config_of(tmp_path / "sdk.tar")
    assert image_id.removeprefix("sha256:") in config_of(tmp_path / "cli.tar")
    with pytest.raises(FileExistsError):  # never over a file
        via_cli.save_image(image_id, str(tmp_path / "cli.tar"))
    with pytest.raises(Exception, match=r"docker save sha256:0{12} exited 1: .*daemon"):  # the engine's own words
        via_cli.save_image("sha256:" + "0" * 64, str(tmp_path / "none.tar"))
    assert not (tmp_path / "none.tar").exists()  # a failed save is never taken for an archive
    via_cli.close()
    via_sdk.close()
