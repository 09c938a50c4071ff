"""The MetaDB as users run it: each precondition made to fail on the sandbox, refused with nothing changed.

The engine and its version, the MetaDB config.yaml names, the clocks, the grants, the client tools
on the backup host; the rollback checks its restore side the same way before any DROP.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import without_volatile
from .test_upgrade_429 import assert_passed, assert_stopped_at

pytestmark = pytest.mark.integration


def unchanged(sandbox):
    """The deployment as it is now; call the result again later to assert nothing changed."""
    snap, ctrs, ha = without_volatile(sandbox.snapshot()), sandbox.containers(), sandbox.ha()

    def check() -> None:
        assert without_volatile(sandbox.snapshot()) == snap
        assert sandbox.containers() == ctrs and sandbox.ha() == ha

    return check


def shadow(tmp: Path, tool: str, script: str) -> str:
    """A PATH whose ``tool`` is ``script`` (the rest of the PATH as it is)."""
    d = tmp / f"shadow-{tool}"
    d.mkdir(exist_ok=True)
    (d / tool).write_text("#!/bin/sh\n" + script)
    (d / tool).chmod(0o755)
    return f"{d}:{os.environ['PATH']}"


def test_an_engine_the_table_does_not_list_is_refused_unless_said_why(sandbox):
    sandbox.fresh("--metadb", "mariadb")
    same = unchanged(sandbox)
    without_reason = sandbox.edited_env(lambda d: d["metadb"].pop("unlisted_engine_reason"))
    p = sandbox.runbook("upgrade_429", env_file=without_reason)
    assert_stopped_at(
        p, 0, "is MariaDB", "OMS 4.2.9-CE is documented on OceanBase, MySQL 8.0 or later", "unlisted_engine_reason"
    )
    same()
    p = sandbox.runbook("upgrade_429", "--until", "0")  # with the sandbox's reason: on, and the report says so
    assert_passed(p, 1)
    summary = (sandbox.last_report("upgrade_429") / "summary.md").read_text()
    assert "second MetaDB engine" in summary and "MariaDB" in summary


def test_the_metadb_the_nodes_use_must_be_the_one_of_the_environment_file(sandbox):
    sandbox.fresh()
    same = unchanged(sandbox)
    other = sandbox.edited_env(lambda d: d["metadb"].update(host="localhost"))  # the same server, by another name
    p = sandbox.runbook("upgrade_429", env_file=other)
    assert_stopped_at(p, 0, "config.yaml has oms_meta_host='127.0.0.1', the environment file says 'localhost'")
    same()


def test_the_metadb_in_another_time_zone_is_refused(sandbox):
    sandbox.fresh()
    sandbox.fault("metadb-timezone")
    same = unchanged(sandbox)
    p = sandbox.runbook("upgrade_429")
    assert_stopped_at(p, 0, "the MetaDB answers at UTC+8 h", "one time zone")
    same()
    sandbox.fault("metadb-timezone-ok")


def test_grants_a_restore_needs_are_checked_before_anything_changes(sandbox):
    sandbox.fresh()
    sandbox.fault("metadb-grants")
    same = unchanged(sandbox)
    p = sandbox.runbook("upgrade_429")
    assert_stopped_at(p, 0, "the MetaDB user oms_meta lacks", "CREATE", "DROP", "a restore (the way back)")
    same()
    sandbox.fault("metadb-grants-ok")
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    sandbox.fault("metadb-grants")  # now the rollback: refused at its preflight, before any DROP
    same = unchanged(sandbox)
    p = sandbox.runbook("rollback_429")
    assert_stopped_at(p, 0, "lacks", "DROP")
    same()
    sandbox.fault("metadb-grants-ok")


def test_client_tools_on_the_backup_host_are_checked_up_front(sandbox, tmp_path):
    sandbox.fresh()
    same = unchanged(sandbox)
    missing = shadow(tmp_path, "mysqldump", "echo 'mysqldump: command not found' >&2; exit 127\n")
    p = sandbox.runbook("upgrade_429", path=missing)
    assert_stopped_at(p, 0, "mysqldump not found on the backup host", "install the MySQL client tools")
    same()
    # a MariaDB dump (its first line: enable the sandbox mode) for a MySQL 8 restore client: refused
    mysql8 = shadow(
        tmp_path,
        "mysql",
        'case "$1" in --version) echo "mysql  Ver 8.0.36 for Linux on x86_64 '
        '(MySQL Community Server - GPL)";; *) exec /usr/bin/mysql "$@";; esac\n',
    )
    p = sandbox.runbook("upgrade_429", path=mysql8)
    assert_stopped_at(p, 0, "enable the sandbox mode", "may refuse", "restore with MariaDB's mysql client")
    same()
