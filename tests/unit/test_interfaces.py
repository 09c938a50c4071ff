"""What the runbooks read from the real OMS and the MetaDB, parsed without services."""

import pytest

from omsup.adapters.cm import parse_cm_answer
from omsup.adapters.console import parse_components, parse_health, parse_projects, parse_steps
from omsup.adapters.oms import parse_supervisor_status
from omsup.errors import NotReady
from omsup.redact import MASK, mask_config
from omsup.steps.image import loaded_refs
from omsup.steps.metadb_checks import RESTORE_NEEDS, privileges
from omsup.versions import Version, metadb_engine, metadb_supported

SUPERVISOR_4 = """\
crond                            RUNNING   pid 12, uptime 0:00:04
nginx                            RUNNING   pid 7, uptime 0:00:04
oms_console                      STOPPED   Not started
oms_drc_cm                       STARTING
oms_drc_supervisor               RUNNING   pid 10, uptime 0:00:04
sshd                             FATAL     Exited too quickly (process log may have details)
"""


def test_supervisor_status_is_read_whatever_the_exit_code():
    states = parse_supervisor_status(SUPERVISOR_4)
    assert states == {
        "crond": "RUNNING",
        "nginx": "RUNNING",
        "oms_console": "STOPPED",
        "oms_drc_cm": "STARTING",
        "oms_drc_supervisor": "RUNNING",
        "sshd": "FATAL",
    }
    assert parse_supervisor_status("unix:///var/run/supervisor/supervisor.sock no such file") == {}


@pytest.mark.parametrize(
    ("out", "refs"),
    [
        ("Loaded image: oceanbase/oms:feature_4.2.9_ce\n", ["oceanbase/oms:feature_4.2.9_ce"]),
        ("Loaded image: oceanbase/oms-ce:feature_4.2.11_ce\n", ["oceanbase/oms-ce:feature_4.2.11_ce"]),
        ("Loaded image ID: sha256:0123abcd\n", ["sha256:0123abcd"]),
        ("open /x: no such file or directory\n", []),
    ],
)
def test_what_docker_load_says_it_loaded(out, refs):
    assert loaded_refs(out) == refs


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("feature_4.2.7_ce", "4.2.7-CE"),
        ("feature_4.2.11_ce", "4.2.11-CE"),
        ("feature_4.2.9-ce", "4.2.9-CE"),
        ("feature_3.3.1", "3.3.1-CE"),
        ("4.2.8-CE", "4.2.8-CE"),
    ],
)
def test_both_tag_forms_name_their_version(tag, version):
    assert str(Version.from_image_tag(tag)) == version


def test_console_answers_are_checked_for_their_shape():
    assert parse_health({"healthy": True})["healthy"] is True
    for bad in (None, {"healthy": "yes"}, [], {"data": 1}):
        with pytest.raises(NotReady):
            parse_health(bad)
    assert parse_projects(None) == [] and parse_projects([{"id": "np_1", "status": "RUNNING"}])[0]["id"] == "np_1"
    for bad in ({"id": 1}, [1], [{"status": "x"}], "x"):
        with pytest.raises(NotReady):
            parse_projects(bad)
    assert parse_steps([{"name": "INCR_TRANSFER", "status": "MONITORING"}])[0]["name"] == "INCR_TRANSFER"
    with pytest.raises(NotReady):
        parse_steps([{"status": "x"}])
    comps = parse_components(
        {
            "incrSyncComponents": [
                {"name": "c1", "ip": "10.0.0.2", "status": "RUNNING", "config": {"source": {"dbType": "MYSQL"}}}
            ]
        }
    )
    assert comps == [{"name": "c1", "host": "10.0.0.2", "status": "RUNNING", "source": {"dbType": "MYSQL"}}]
    assert parse_components({"incrSyncComponents": None}) == []
    with pytest.raises(NotReady):
        parse_components({"incrSyncComponents": [{"name": "c1", "config": None}]})


def test_the_cms_answer():
    assert parse_cm_answer(b'{"errCode":null,"errMsg":null,"isSuccess":true,"result":1}')["result"] == 1
    for bad in (b"", b"<html>502</html>", b'{"success":true}', b"[" * 5000 + b"]" * 5000):
        with pytest.raises(NotReady):
            parse_cm_answer(bad)


def test_connector_configurations_are_shown_with_their_secrets_masked():
    config = {
        "source": {"dbType": "MYSQL", "password": "s3cret-pw", "clients": [{"username": "u", "password": "p"}]},
        "sink": {"jdbcUrl": "jdbc:x", "accessKey": "AK", "token": "T"},
    }
    shown = mask_config(config)
    assert shown["source"]["password"] == MASK and shown["source"]["clients"][0]["password"] == MASK
    assert shown["sink"]["accessKey"] == MASK and shown["sink"]["token"] == MASK
    assert shown["source"]["dbType"] == "MYSQL" and shown["sink"]["jdbcUrl"] == "jdbc:x"


@pytest.mark.parametrize(
    ("version", "comment", "engine", "numbers"),
    [
        ("5.7.25-OceanBase seekdb-v1.4.0.0", "OceanBase 4.3.5.3 seekdb (r1.4.0.0)", "OceanBase", (4, 3, 5, 3)),
        ("5.7.25-OceanBase-v4.2.5.1", "OceanBase_CE 4.2.5.1 (r101010022025...)", "OceanBase", ()),
        ("8.0.36", "MySQL Community Server - GPL", "MySQL", (8, 0, 36)),
        ("5.7.44-log", "MySQL Community Server (GPL)", "MySQL", (5, 7, 44)),
        ("10.11.6-MariaDB-0+deb12u1", "Debian 12", "MariaDB", (10, 11, 6)),
    ],
)
def test_the_metadb_engine_from_its_version(version, comment, engine, numbers):
    found = metadb_engine(version, comment)
    assert found[0] == engine and (not numbers or found[1] == numbers)


def test_the_support_table():
    assert metadb_supported("4.2.9-CE", "OceanBase", (4, 3, 5)) is not None
    assert metadb_supported("4.2.9-CE", "MySQL", (8, 0, 36)) is not None
    assert metadb_supported("4.2.9-CE", "MySQL", (5, 7, 44)) is None  # the FAQ: 5.x breaks the 4.2 console
    assert metadb_supported("4.2.9-CE", "MariaDB", (10, 11, 6)) is None  # not a documented MetaDB
    assert metadb_supported("3.3.1-CE", "MySQL", (5, 7, 44)) is not None


def test_grants_global_and_per_database():
    grants = [
        "GRANT USAGE ON *.* TO 'oms'",
        "GRANT SELECT, INSERT, CREATE, DROP, ALTER, INDEX ON `rm_428`.* TO 'oms'",
        "GRANT ALL PRIVILEGES ON `cm_428`.* TO `oms`@`%`",
    ]
    assert {"SELECT", "DROP"} <= privileges(grants, "rm_428")
    assert "ALL" in privileges(grants, "cm_428")
    assert all(p not in privileges(grants, "cm_hb_428") for p in RESTORE_NEEDS)
    assert privileges(["GRANT ALL PRIVILEGES ON *.* TO 'root' WITH GRANT OPTION"], "x") == {"ALL"}


def test_list_projects_stops_at_the_page_cap(monkeypatch):
    """A console that keeps answering full pages is not believed forever: a clear error after the cap."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from omsup.adapters import console as mod
    from omsup.envfile import Console as ConsoleConfig
    from omsup.envfile import Secret

    asked: list[int] = []

    class Endless(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append(body["pageNumber"])
            page = [{"id": f"p{body['pageNumber']}-{i}", "status": "RUNNING"} for i in range(body["pageSize"])]
            raw = json.dumps({"success": True, "data": page, "totalCount": None}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(mod, "MAX_PAGES", 7)
    try:
        c = mod.Console(
            ConsoleConfig(server.server_port, "http", "admin", Secret("test", "x" * 12), None), "127.0.0.1", "n1"
        )
        with pytest.raises(NotReady, match="still answers full pages after 7 pages"):
            c.list_projects()
    finally:
        server.shutdown()
        server.server_close()
    assert asked == [1, 2, 3, 4, 5, 6, 7]
