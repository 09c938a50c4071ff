"""What a failed `mysql` client run is reported as: MariaDB's client echoes the failing statement between dashes
before its ERROR line (seen here with MariaDB 10.11, a restore of a dump: the statement is an INSERT of the MetaDB's
rows). The rows must never reach the message (terminal, log, report); the ERROR line must."""

from __future__ import annotations

import pytest

from omsup.adapters.hosts import Result
from omsup.adapters.metadb import MetaDB, client_error
from omsup.envfile import MetaDB as MetaDBConfig
from omsup.envfile import Secret
from omsup.errors import MetaDBProblem

ROW = "('ds_1','jdbc:mysql://10.0.0.9:3306','oms_reader','c2VjcmV0LXBhc3N3b3Jk')"
ECHOED = (
    "--------------\n"
    f"INSERT INTO `datasource` VALUES {','.join([ROW] * 40)}\n"
    "--------------\n\n"
    "ERROR 4012 (HY000) at line 45: Timeout, query has reached the maximum query timeout: 1(us)\n"
)


class FakeHost:
    label, is_local, spec, node = "n1", True, "local://", None

    def __init__(self, stderr: str) -> None:
        self.stderr = stderr

    def run(self, command: str, *args: str, **how: object) -> Result:
        return Result(1, "", self.stderr)

    def is_dir(self, path: str) -> bool:
        return True

    def make_private_dir(self, path: str) -> None: ...

    def put_secret_file(self, path: str, body: str) -> None: ...

    def remove(self, path: str) -> None: ...

    def remove_empty_dir(self, path: str) -> None: ...


@pytest.mark.parametrize("method", ["restore", "script"])
def test_a_failed_client_run_names_its_error_line_and_never_the_echoed_rows(monkeypatch, method):
    db = MetaDB(MetaDBConfig("127.0.0.1", 2881, "oms_meta", Secret("test", "pw"), "rm", "cm"))
    db._oceanbase = False  # the engine known: no session opened
    monkeypatch.setattr(db, "ping", lambda: "8.0.36")  # the MetaDB answers: the client's error is the cause
    host = FakeHost(ECHOED)
    with pytest.raises(MetaDBProblem) as e:
        if method == "restore":
            db.restore(host, "/tmp/x", "rm", "/tmp/x/rm.sql")  # type: ignore[arg-type]
        else:
            db.script(host, "/tmp/x", "SELECT 1", "a script")  # type: ignore[arg-type]
    assert "ERROR 4012 (HY000) at line 45: Timeout" in e.value.message
    assert "c2VjcmV0" not in e.value.message and "INSERT INTO" not in e.value.message, e.value.message


@pytest.mark.parametrize(
    ("stderr", "shown"),
    [
        (ECHOED, "ERROR 4012 (HY000) at line 45: Timeout, query has reached the maximum query timeout: 1(us)"),
        ("ERROR 2002 (HY000): Can't connect to server on '10.0.0.1' (115)\n", "ERROR 2002 (HY000): Can't connect"),
        ("mysql: unknown option '--init-command'\n", "mysql: unknown option '--init-command'"),  # no ERROR line
        # an echo without an ERROR line (cut off): the statement still never shown
        ("--------------\nINSERT INTO t VALUES ('x')\n--------------\n", "(the client printed only the statement)"),
        ("", "(nothing)"),
    ],
)
def test_client_error(stderr, shown):
    got = client_error(stderr)
    assert got.startswith(shown), got
    assert "INSERT INTO" not in got


def test_the_record_of_a_failed_client_run_holds_its_error_line_and_never_the_echoed_rows(tmp_path):
    """The host's record of the run (events.jsonl, the log, the report) too, not only the message."""
    from omsup.adapters.hosts import Host
    from omsup.audit import AUDIT

    (tmp_path / "err").write_text(ECHOED)
    before = len(AUDIT.events)
    r = Host("local://", "here").run("cat %s >&2; exit 1", str(tmp_path / "err"), said=client_error)
    assert r.rc == 1
    (event,) = AUDIT.events[before:]
    assert "ERROR 4012 (HY000) at line 45" in event.outcome
    assert "c2VjcmV0" not in event.outcome and "INSERT INTO" not in event.outcome, event.outcome
