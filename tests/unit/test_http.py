"""HTTP to the console and the CM: credentials never leave their origin, and only the documented answer
is believed (real local HTTP servers on loopback addresses)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from omsup.adapters.cm import CM
from omsup.adapters.console import Console
from omsup.audit import AUDIT
from omsup.envfile import Console as ConsoleConfig
from omsup.envfile import Secret
from omsup.errors import NotReady


class Server:
    """A loopback HTTP server answering each path from ``routes``: (status, headers, body); it records what
    it was sent."""

    def __init__(self, ip: str, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.seen: list[dict[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
                status, headers, body = routes.get(self.path.split("?")[0], (404, {}, b"{}"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((ip, 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    made: list[Server] = []

    def make(ip: str, routes):
        s = Server(ip, routes)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def envelope(data, total=None) -> bytes:
    return json.dumps({"success": True, "code": None, "message": None, "data": data, "totalCount": total}).encode()


def console(port: int) -> Console:
    cfg = ConsoleConfig(port, "http", "admin", Secret("test", "Console-Secret-9"), None)
    return Console(cfg, "127.0.0.1", "n1")


def test_a_redirect_to_another_host_is_refused_and_the_credentials_never_go_there(servers):
    other = servers("127.0.0.2", {"/api/v2": (200, {}, envelope([]))})
    first = servers("127.0.0.1", {"/api/v2": (302, {"Location": f"http://127.0.0.2:{other.port}/api/v2"}, b"")})
    with pytest.raises(NotReady, match="a redirect to http://127.0.0.2.*refused"):
        console(first.port).list_projects()
    assert other.seen == []  # never reached: its empty answer was taken for 'no projects'
    assert first.seen[0]["authorization"] is not None


def test_a_redirect_to_another_port_or_scheme_is_refused(servers):
    other = servers("127.0.0.1", {"/oms/health": (200, {}, envelope({"healthy": True}))})
    first = servers("127.0.0.1", {"/api/v2": (301, {"Location": f"https://127.0.0.1:{other.port}/api/v2"}, b"")})
    with pytest.raises(NotReady, match="refused"):
        console(first.port).list_projects()
    assert other.seen == []


def test_a_get_redirected_within_the_same_origin_is_followed_a_post_is_not(servers):
    routes = {
        "/oms/health": (302, {"Location": "/oms/health/"}, b""),
        "/oms/health/": (200, {}, envelope({"healthy": True})),
        "/api/v2": (307, {"Location": "/api/v2b"}, b""),
    }
    s = servers("127.0.0.1", routes)
    assert console(s.port).health() == {"healthy": True}
    with pytest.raises(NotReady, match="HTTP 307, a redirect to http://127.0.0.1.*/api/v2b: refused"):
        console(s.port).list_projects()  # its body would be dropped on the way
    assert [x["path"].split("?")[0] for x in s.seen] == ["/oms/health", "/oms/health/", "/api/v2"]


@pytest.mark.parametrize(
    "body, ok",
    [
        (envelope(None, total=0), True),  # no projects, said so
        (envelope(None, total=None), False),
        (json.dumps({"success": True}).encode(), False),  # the envelope without its list
        (b"<html>login</html>", False),
    ],
)
def test_list_projects_believes_only_the_documented_answer(servers, body, ok):
    s = servers("127.0.0.1", {"/api/v2": (200, {}, body)})
    if ok:
        assert console(s.port).list_projects() == []
    else:
        with pytest.raises(NotReady, match=f"127.0.0.1:{s.port}|ListProjects"):
            console(s.port).list_projects()


def test_a_cm_answer_that_is_not_json_is_recorded_before_it_is_refused(servers, monkeypatch):
    s = servers("127.0.0.1", {"/connector/task/stopByName": (502, {}, b"Bad Gateway")})
    cm = CM("127.0.0.1", "n1")
    monkeypatch.setattr(cm, "base", f"http://127.0.0.1:{s.port}")
    before = len(AUDIT.events)
    with pytest.raises(NotReady, match="HTTP 502"):
        cm.stop_connector("c1")
    (ev,) = AUDIT.events[before:]
    assert ev.system == "cm" and "stopByName" in ev.action and "HTTP 502" in ev.outcome
