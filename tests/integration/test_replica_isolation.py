"""The rehearsal's replica is isolated (issue 29, point 4): a container started by a Docker engine in a replica node's
namespace reaches the replica's hub, and nothing of the "production" sandbox (its MetaDB, its consoles) nor a
listener this test starts on another loopback address outside the replica.

The container is the sandbox's own OMS image (its 4.2.8 installation package, loaded into the replica's engine), run
with `--net host` as the document starts OMS. Tests talk only to loopback addresses and to namespaces they create.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from omsup.adapters.hosts import Host
from omsup.adapters.replica import ReplicaNet

pytestmark = pytest.mark.integration

PROBE = """
import json, socket, sys
out = {}
for name, host, port in json.loads(sys.argv[1]):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); out[name] = "connected"
    except OSError as e:
        out[name] = type(e).__name__ + ": " + str(e)
    finally:
        s.close()
print(json.dumps(out))
"""


def listener(ip: str, greeting: bytes = b"") -> tuple[socket.socket, int]:
    """A listener on ``ip`` that says ``greeting`` to whoever connects, and hangs up."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, 0))
    srv.listen(8)

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
                c.sendall(greeting)
                c.close()
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def wait_socket(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear in {seconds} s")
        time.sleep(0.2)


def test_a_replica_container_reaches_its_hub_and_nothing_of_production(sandbox, tmp_path):
    sandbox.fresh()
    st = sandbox.status()
    node = st["nodes"][0]
    package = st["packages"]["4.2.8-CE"]
    outside, outside_port = listener("127.0.0.77")  # a service outside the replica, on another loopback address
    # the same listener answers from here: the targets below are live, only the replica cannot reach them
    with socket.create_connection(("127.0.0.77", outside_port), timeout=3):
        pass
    net = ReplicaNet(Host("local://", "rehearsal host"), "omsupt", 2)
    root = tmp_path / "replica"
    root.mkdir()
    (root / "n1").mkdir()
    net.destroy()  # a replica an earlier, killed run of this test left
    net.create()
    pids: list[int] = []
    try:
        hub_port = 7301
        pids.append(
            net.start_daemon(
                net.hub,
                ["python3", "-c", f"import socket,time;s=socket.socket();s.bind(('0.0.0.0',{hub_port}));s.listen();time.sleep(600)"],
                str(root / "hub.log"),
                str(root / "hub.pid"),
            )
        )  # fmt: skip
        # the scratch MetaDB a user names (rehearsal.metadb): outside the replica, reached through the relay alone
        scratch, scratch_port = listener("127.0.0.79", b"scratch server")
        relay_port = 7302
        pids.append(
            net.start_relay(relay_port, ("127.0.0.79", scratch_port), str(root / "relay.log"), str(root / "relay.pid"))
        )
        said = subprocess.run(
            ["ip", "netns", "exec", net.hub, "python3", "-c",
             f"import socket; c = socket.create_connection(('{net.hub_ip}', {relay_port}), timeout=3); print(c.recv(64))"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert said.stdout.strip() == "b'scratch server'", said.stdout + said.stderr
        argv, url = net.engine_argv(str(root), 1)
        pids.append(net.start_daemon(net.ns(1), argv, str(root / "n1" / "dockerd.log"), str(root / "n1" / "pid")))
        wait_socket(root / "n1" / "docker.sock")
        docker = ["docker", "-H", url]
        deadline = time.monotonic() + 60
        while subprocess.run([*docker, "version"], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, (root / "n1" / "dockerd.log").read_text()[-2000:]
            time.sleep(0.5)
        loaded = subprocess.run([*docker, "load", "-i", package], capture_output=True, text=True, timeout=300)
        assert loaded.returncode == 0, loaded.stderr
        image = loaded.stdout.strip().splitlines()[-1].split("Loaded image: ")[-1].split("Loaded image ID: ")[-1]
        targets = [
            ("hub", net.hub_ip, hub_port),
            ("production MetaDB", st["metadb"]["host"], int(st["metadb"]["port"])),
            ("production console", node["ip"], 8089),
            ("production CM", node["ip"], 8088),
            ("listener outside the replica", "127.0.0.77", outside_port),
            ("the scratch server directly", "127.0.0.79", scratch_port),
            ("the scratch server through the relay", net.hub_ip, relay_port),
        ]
        p = subprocess.run(
            [
                *docker,
                "run",
                "--rm",
                "--net",
                "host",
                "--entrypoint",
                "python3",
                image,
                "-c",
                PROBE,
                json.dumps(targets),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0, p.stderr
        seen = json.loads(p.stdout.strip().splitlines()[-1])
        assert seen["hub"] == "connected", seen  # the replica's own network works
        assert seen["the scratch server through the relay"] == "connected", seen
        for name in ("production MetaDB", "production console", "production CM", "listener outside the replica",
                     "the scratch server directly"):  # fmt: skip
            assert seen[name] != "connected" and ("Refused" in seen[name] or "unreachable" in seen[name]), seen
        # and from this machine's namespace the same production targets answer
        with socket.create_connection((st["metadb"]["host"], int(st["metadb"]["port"])), timeout=3):
            pass
    finally:
        for pid in reversed(pids):
            net.stop_daemon(pid)
        subprocess.run(["umount", f"{net.exec_root(1)}/netns/default"], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", net.exec_root(1)], capture_output=True)
        left = net.destroy()
        outside.close()
    assert left == [] and net.existing() == []
