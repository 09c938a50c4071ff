"""One choke point (issue 28, point 3): every command, statement and request an adapter sends to the deployment
runs inside ``audit.call``, which records it exactly once, whether it succeeds, fails or is interrupted.

The transports are replaced at their lowest level (PyMySQL's connect and cursor, the docker SDK's client,
testinfra's host and the subprocess a secret file is written through, ``http.send``); each fake checks at the
moment it is asked that a recorded call is open around it. A request added to an adapter without its record fails
here. (What runs only on this machine, `ssh -G` reading the SSH configuration and the masters closed at exit, is
not a request to the deployment.)
"""

from __future__ import annotations

import json
from typing import Any

import docker
import pymysql
import pytest

from omsup import audit
from omsup.adapters import cm as cm_mod
from omsup.adapters import engine as engine_mod
from omsup.adapters import hosts as hosts_mod
from omsup.adapters import http
from omsup.adapters.cm import CM
from omsup.adapters.console import Console
from omsup.adapters.engine import Engine
from omsup.adapters.hosts import Host
from omsup.adapters.metadb import MetaDB
from omsup.audit import AUDIT
from omsup.envfile import Console as ConsoleConfig
from omsup.envfile import MetaDB as MetaDBConfig
from omsup.envfile import Secret
from omsup.errors import ContainerProblem, HostProblem, NotReady


class Open:
    """How many recorded calls are open now, and every request a fake was asked, with that count then."""

    def __init__(self) -> None:
        self.depth = 0
        self.requests: list[tuple[str, int]] = []

    def asked(self, what: str) -> None:
        self.requests.append((what, self.depth))

    def unrecorded(self) -> list[str]:
        return [what for what, depth in self.requests if depth == 0]


@pytest.fixture
def watch(monkeypatch):
    w = Open()
    real = audit.call

    class Tracked:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.cm = real(*args, **kwargs)

        def __enter__(self) -> audit.Call:
            w.depth += 1
            return self.cm.__enter__()

        def __exit__(self, *exc: Any) -> Any:
            w.depth -= 1
            return self.cm.__exit__(*exc)

    monkeypatch.setattr(audit, "call", Tracked)
    return w


# -- the helper itself -----------------------------------------------------------------------------------------


def test_a_call_is_recorded_once_whatever_happens():
    before = len(AUDIT.events)
    with audit.call("host", "n1", "true") as rec:
        rec.outcome = "exit 0"
    with pytest.raises(HostProblem), audit.call("host", "n1", "false"):
        raise HostProblem("host n1: it failed")
    with pytest.raises(KeyError), audit.call("engine", "n1", "inspect x") as rec:
        rec.failure = "not found"
        raise KeyError("x")
    with pytest.raises(KeyboardInterrupt), audit.call("metadb", "db", "SELECT SLEEP(9)"):
        raise KeyboardInterrupt
    with pytest.raises(ValueError), audit.call("cm", "n1", "POST /x") as rec:
        rec.action = "POST /x?taskName=c1"
        raise ValueError("boom")
    got = [(e.action, e.outcome) for e in AUDIT.events[before:]]
    assert got == [
        ("true", "exit 0"),
        ("false", "failed: host n1: it failed"),
        ("inspect x", "not found"),
        ("SELECT SLEEP(9)", "interrupted (KeyboardInterrupt)"),
        ("POST /x?taskName=c1", "failed: ValueError: boom"),
    ]


# -- the MetaDB: the connection's own statements too ------------------------------------------------------------


class FakeCursor:
    def __init__(self, w: Open, answer: str) -> None:
        self.w = w
        self.answer = answer
        self.rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def mogrify(self, sql: str, args: Any = None) -> str:
        return sql if args is None else sql % tuple(repr(a) for a in args)

    def execute(self, sql: str, args: Any = None) -> int:
        self.w.asked(f"statement {sql}")
        self.rows = [(self.answer,)] if "VERSION()" in sql else []
        return len(self.rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class FakeConnection:
    open = True

    def __init__(self, w: Open, answer: str) -> None:
        self.w = w
        self.answer = answer

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.w, self.answer)

    def get_server_info(self) -> str:
        return self.answer

    def ping(self) -> None:
        self.w.asked("ping")

    def close(self) -> None:
        self.open = False


@pytest.mark.parametrize("server", ["5.7.25-OceanBase_CE-v4.2.1.0", "8.0.36"])
def test_every_statement_the_metadb_sends_is_recorded(watch, monkeypatch, server):
    def connect(**kwargs: Any) -> FakeConnection:
        watch.asked("connect")
        return FakeConnection(watch, server)

    monkeypatch.setattr(pymysql, "connect", connect)
    db = MetaDB(MetaDBConfig("127.0.0.1", 2881, "root@oms", Secret("test", "pw"), "rm", "cm"))
    before = len(AUDIT.events)
    db.ping()
    db.query("SELECT 1 FROM t WHERE a = %s", ("x",), db="rm")
    db.execute("DELETE FROM heartbeat WHERE id < %s", (5,), db="cm_hb", timeout_s=30)  # its own connection
    assert len(watch.requests) >= 6  # connects and statements, the session's timeouts on OceanBase
    assert watch.unrecorded() == []
    actions = [e.action for e in AUDIT.events[before:]]
    assert any(a.startswith("connect as root@oms") for a in actions)
    assert "[rm] SELECT 1 FROM t WHERE a = 'x'" in actions
    if "OceanBase" in server:
        assert sum("SET SESSION ob_query_timeout" in a for a in actions) == 2


# -- the engine: the client's creation and the logs too ---------------------------------------------------------


class FakeContainer:
    def __init__(self, w: Open, name: str) -> None:
        self.w = w
        self.name = name
        self.status = "running"
        self.short_id = "abc123"
        self.id = "abc123" * 10
        self.attrs = {"Config": {"Image": "oms:4.2.8"}, "Id": self.id}

    def logs(self, tail: int) -> bytes:
        self.w.asked(f"logs {self.name}")
        return b"started\n"

    def stop(self, timeout: int) -> None:
        self.w.asked(f"stop {self.name}")


class FakeClient:
    def __init__(self, w: Open) -> None:
        self.w = w
        w.asked("GET /version (negotiation)")
        self.api = type("Api", (), {"api_version": "1.41"})()
        outer = self

        class Containers:
            def get(self, name: str) -> FakeContainer:
                outer.w.asked(f"GET /containers/{name}/json")
                if name == "gone":
                    raise docker.errors.NotFound("no such container")
                return FakeContainer(outer.w, name)

        class Images:
            def get(self, ref: str) -> Any:
                outer.w.asked(f"GET /images/{ref}/json")
                raise docker.errors.NotFound("no such image")

        self.containers = Containers()
        self.images = Images()

    def ping(self) -> bool:
        self.w.asked("GET /_ping")
        return True

    def version(self) -> dict[str, str]:
        self.w.asked("GET /version")
        return {"ApiVersion": "1.41"}

    def close(self) -> None:
        pass


def test_every_request_the_engine_sends_is_recorded(watch, monkeypatch):
    monkeypatch.setattr(engine_mod.docker, "DockerClient", lambda **kw: FakeClient(watch))
    e = Engine("unix:///var/run/docker.sock", "n1", Host("local://", "n1"), via="sdk")
    before = len(AUDIT.events)
    assert e.ping()
    e.version()
    assert e.inspect("oms") is not None and e.inspect("gone") is None
    assert e.logs("oms") == "started\n"
    e.stop("oms")
    assert e.image_id("feature_4.2.9_ce") is None
    assert len(watch.requests) >= 9
    assert watch.unrecorded() == []
    events = AUDIT.events[before:]
    assert events[0].action.startswith("connect") and events[0].outcome == "API 1.41"
    assert any(ev.action == "docker logs --tail 20 oms" and ev.outcome == "8 bytes" for ev in events)


def test_a_lost_connection_is_recorded_and_sent_once_more(watch, monkeypatch):
    monkeypatch.setattr(engine_mod.docker, "DockerClient", lambda **kw: FakeClient(watch))
    e = Engine("unix:///var/run/docker.sock", "n1", Host("local://", "n1"), via="sdk")
    tries: list[int] = []

    def flaky() -> str:
        watch.asked("request")
        tries.append(1)
        if len(tries) == 1:
            raise BrokenPipeError("pipe")
        return "fine"

    before = len(AUDIT.events)
    assert e._call("docker start oms", flaky) == "fine"
    outcomes = [ev.outcome for ev in AUDIT.events[before:] if ev.action == "docker start oms"]
    assert outcomes == ["connection lost (pipe); retrying once", "ok"]
    with pytest.raises(ContainerProblem, match="BrokenPipeError"):
        e._call("docker rename oms x", lambda: (_ for _ in ()).throw(BrokenPipeError("pipe")), retry=False)
    assert watch.unrecorded() == []


# -- hosts: commands and the secret file written through stdin ----------------------------------------------------


class FakeTestinfra:
    def __init__(self, w: Open) -> None:
        self.w = w

    def run(self, command: str) -> Any:
        self.w.asked(f"command {command}")
        return type("R", (), {"rc": 0, "stdout_bytes": b"ok\n", "stderr_bytes": b""})()


def test_every_command_a_host_runs_is_recorded(watch, monkeypatch, tmp_path):
    h = Host("local://", "n1", node="n1", sudo=True)
    h.__dict__["_host"] = FakeTestinfra(watch)

    def run(argv: list[str], **kw: Any) -> Any:
        watch.asked(f"subprocess {argv[0]}")
        assert b"s3cret" == kw["input"]  # the content goes on stdin, never on the command line
        return type("P", (), {"returncode": 0, "stderr": b""})()

    monkeypatch.setattr(hosts_mod.subprocess, "run", run)
    before = len(AUDIT.events)
    h.check("true")
    h.read_text(str(tmp_path / "x"))
    h.put_secret_file(str(tmp_path / "secret"), "s3cret")
    assert len(watch.requests) == 3 and watch.unrecorded() == []
    assert not any("s3cret" in ev.action + ev.outcome for ev in AUDIT.events[before:])


# -- the CM and the console: every request, answered or not -------------------------------------------------------


@pytest.mark.parametrize("answer", ["ok", "no answer", "not json"])
def test_every_request_to_the_cm_and_the_console_is_recorded(watch, monkeypatch, answer):
    def send(req: Any, timeout: float, limit: int, context: Any = None) -> tuple[int, bytes]:
        watch.asked(f"{req.get_method()} {req.full_url}")
        if answer == "no answer":
            raise http.NoAnswer("connection refused")
        if answer == "not json":
            return 502, b"<html>Bad Gateway</html>"
        if "/connector/" in req.full_url:
            return 200, json.dumps({"isSuccess": True, "errCode": None, "result": None}).encode()
        return 200, json.dumps({"success": True, "code": "OK", "data": {"healthy": True}}).encode()

    monkeypatch.setattr(http, "send", send)
    assert cm_mod.http.send is send
    cm = CM("127.0.0.1", "n1")
    console = Console(ConsoleConfig(8089, "http", "admin", Secret("test", "pw"), None), "127.0.0.1", "n1")
    before = len(AUDIT.events)
    for verb in (lambda: cm.stop_connector("c1"), cm.has_by_name_api, console.health):
        try:
            verb()
        except NotReady:
            assert answer != "ok"
    assert len(watch.requests) == 3 and watch.unrecorded() == []
    assert len(AUDIT.events[before:]) == 3
