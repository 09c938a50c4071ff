"""The MetaDB as users run it: each precondition made to fail on the sandbox, refused with nothing changed.

The engine and its version, the MetaDB config.yaml names, the clocks, the grants, the client tools
on the backup host; the rollback checks its restore side the same way before any DROP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import STATE, assert_restored, ledger_paths, without_volatile
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


def test_a_dump_mysqldump_calls_complete_without_a_table_of_the_database_is_no_backup(sandbox, tmp_path):
    """MariaDB's mysqldump can exit 0 with its completion marker and no table in the dump (against OceanBase when its
    session's query timeout runs out while it lists the tables: seen on the sandbox's seekdb). The backup counts the
    tables in each dump: one without a table the database has stops the run at the backup, the dump left as a
    partial file; the next run takes the backups anew and goes on."""
    import shutil

    sandbox.fresh()
    rm = sandbox.status()["metadb"]["rm"]
    real = shutil.which("mysqldump")
    leaves_one_out = shadow(  # the real mysqldump, told to leave rm's oms_version out: exits 0, marker and all
        tmp_path,
        "mysqldump",
        f'for a in "$@"; do db=$a; done\nfirst=$1; shift\nexec {real} "$first" --ignore-table="$db.oms_version" "$@"\n',
    )
    p = sandbox.runbook("upgrade_429", path=leaves_one_out)
    assert_stopped_at(p, 4, f"mysqldump of {rm}", "exited 0 but the dump lacks 1 of the", "(oms_version)", "no backup")
    led = json.loads(ledger_paths("upgrade_429")[-1].read_text())
    assert led["steps"]["backup"]["status"] != "done" and not [b for b in led["facts"]["backups"] if b["db"] == rm]
    (partial,) = (STATE / "backups").glob(f"*/upgrade_429-*-a1/{rm}.sql.partial")
    assert b"CREATE TABLE `cluster_info`" in partial.read_bytes() and b"`oms_version`" not in partial.read_bytes()
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    led = json.loads(ledger_paths("upgrade_429")[-1].read_text())
    assert {b["db"] for b in led["facts"]["backups"]} >= {rm} and led["facts"]["backup_attempt"] == 2


def test_the_tools_own_sessions_do_not_run_out_of_a_tiny_global_ob_query_timeout(sandbox):
    """A tenant whose global ob_query_timeout is one microsecond (the rehearsal's CI test sets it so that every
    dump runs out): the adapter's own sessions must not fail on it. Seen on seekdb: about 3 in 100 new sessions'
    plain `SELECT VERSION()` (which told OceanBase apart before the session's timeout was raised) ran out and
    stopped a rehearsal at its first step; the same statement with a QUERY_TIMEOUT hint never did."""
    from omsup import envfile
    from omsup.adapters.metadb import MetaDB

    sandbox.fresh()  # OceanBase seekdb
    env = envfile.load(STATE / "sandbox.env.yaml")
    default = sandbox.sql("SELECT /*+ QUERY_TIMEOUT(10000000) */ @@global.ob_query_timeout")[0][0]
    sandbox.sql("SET GLOBAL ob_query_timeout = 1")
    failed = []
    try:
        for _ in range(300):  # new sessions, each telling the engine apart again
            try:
                MetaDB(env.metadb).server()
            except Exception as e:  # noqa: BLE001 - counted, shown below
                failed.append(str(e)[:200])
    finally:
        sandbox.sql(f"SET GLOBAL ob_query_timeout = {default}")
    assert not failed, f"{len(failed)} of 300 sessions failed, e.g. {failed[0]}"


def test_a_rollback_restores_on_a_tenant_whose_global_ob_query_timeout_is_tiny(sandbox):
    """The restore's `mysql` session gets the tenant's global ob_query_timeout (10 s by default) like a dump's: a
    statement of the dump that runs longer (a large INSERT on a busy tenant) would stop the rollback mid-outage.
    The restore's session sets its own timeouts (OceanBase only); shown here with the global at one microsecond,
    at which about 3 in 100 statements of a plain session run out."""
    sandbox.fresh()  # OceanBase seekdb
    assert_passed(sandbox.runbook("upgrade_429", "--until", "4"), 5)
    at_backup = sandbox.snapshot()
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    default = sandbox.sql("SELECT /*+ QUERY_TIMEOUT(10000000) */ @@global.ob_query_timeout")[0][0]
    sandbox.sql("SET GLOBAL ob_query_timeout = 1")
    try:  # up to and with the restore's verification; the old OMS starts with the tenant as it was
        p = sandbox.runbook("rollback_429", "--until", "4")
    finally:
        sandbox.sql(f"SET GLOBAL ob_query_timeout = {default}")
    assert_passed(p, 5)
    assert_passed(sandbox.runbook("rollback_429"), 8)
    assert_restored(at_backup, sandbox.snapshot())


def test_oceanbase_timeouts_are_raised_for_the_dumps_and_set_back(sandbox):
    """mysqldump cannot set its session's ob_query_timeout (10 s by default): the backup raises the tenant's
    global values for the dumps, recorded first, and sets them back; a user who may not is refused up front."""
    sandbox.fresh()  # OceanBase seekdb
    dbs = [sandbox.status()["metadb"][k] for k in ("rm", "cm")] + sandbox.status()["metadb"]["cm_hb"]
    sandbox.sql("SET GLOBAL ob_query_timeout = 10000000")
    before = sandbox.sql("SELECT @@global.ob_query_timeout, @@global.ob_trx_timeout, @@global.ob_trx_idle_timeout")[0]
    # a user with every privilege on the databases but none on the tenant
    sandbox.sql("REVOKE ALL PRIVILEGES ON *.* FROM 'oms_meta'@'%'")
    for db in dbs:
        sandbox.sql(f"GRANT ALL PRIVILEGES ON `{db}`.* TO 'oms_meta'@'%'")
    same = unchanged(sandbox)
    p = sandbox.runbook("upgrade_429")
    assert_stopped_at(p, 0, "ob_query_timeout=10000000us", "may not raise them", "grant the user SUPER")
    same()
    sandbox.fault("metadb-grants-ok")
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    events = [json.loads(x) for x in (sandbox.last_report("upgrade_429") / "events.jsonl").read_text().splitlines()]
    raised = [e for e in events if e["action"].startswith("SET GLOBAL ob_query_timeout = 86400000000")]
    set_back = [e for e in events if e["action"].startswith(f"SET GLOBAL ob_query_timeout = {before[0]}")]
    dumps = [e for e in events if e["step"] == "backup" and "mysqldump --defaults-extra-file" in e["action"]]
    assert raised and set_back and dumps and {e["step"] for e in raised + set_back} == {"backup"}
    assert raised[0]["time"] < min(e["time"] for e in dumps) and set_back[-1]["time"] > max(e["time"] for e in dumps)
    after = sandbox.sql("SELECT @@global.ob_query_timeout, @@global.ob_trx_timeout, @@global.ob_trx_idle_timeout")[0]
    assert after == before
    led = json.loads(ledger_paths("upgrade_429")[-1].read_text())["facts"]
    assert led["ob_globals_before"]["ob_query_timeout"] == before[0] and led["ob_globals_restored"] is True


def test_a_rollback_compares_the_digest_kind_its_backup_recorded(sandbox):
    """Backups recorded before digest kinds (crc32+md5, no `kind` in the ledger) are compared after the
    restore with that same digest, not with today's default: a rollback of such an upgrade passes, and
    its verification reads MD5 sums; a recorded digest that differs stops the rollback before the old
    containers start, and it resumes once the ledger is right again."""
    from omsup.adapters.metadb import DIGESTS, row_text

    sandbox.fresh()
    assert_passed(sandbox.runbook("upgrade_429", "--until", "4"), 5)  # OMS stopped, backups just taken
    path = ledger_paths("upgrade_429")[-1]
    led = json.loads(path.read_text())
    for b in led["facts"]["backups"]:
        assert {s["kind"] for s in b["tables"].values()} == {"crc32+len"}  # today's default is recorded
        old = {}
        for t in b["tables"]:
            cols = [r[0] for r in sandbox.sql(f"SHOW COLUMNS FROM `{t}`", b["db"])]
            n, x, y = sandbox.sql(
                f"SELECT COUNT(*), {DIGESTS['crc32+md5']} FROM (SELECT {row_text(cols)} AS r FROM `{t}`) d", b["db"]
            )[0]
            old[t] = {"rows": int(n), "digest": f"{int(x):x}-{int(y):x}"}  # as the ledger of an older version
        b["tables"] = old
    path.write_text(json.dumps(led, indent=2))
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    # one recorded digest altered: the restore's verification stops the rollback before the old containers start
    led = json.loads(path.read_text())
    rm = next(b for b in led["facts"]["backups"] if b["role"] == "rm")
    good = rm["tables"]["oms_version"]["digest"]
    rm["tables"]["oms_version"]["digest"] = "0-" + good.split("-")[1]
    path.write_text(json.dumps(led, indent=2))
    p = sandbox.runbook("rollback_429")
    assert_stopped_at(p, 4, "restored tables differ from the backup", "oms_version")
    assert not any(c["running"] for ctrs in sandbox.containers().values() for c in ctrs.values())
    # the rollback works from its own copy of the upgrade's record (taken at its preflight): set right there
    rb_path = ledger_paths("rollback_429")[-1]
    rb = json.loads(rb_path.read_text())
    copy = next(b for b in rb["facts"]["upgrade"]["backups"] if b["role"] == "rm")
    assert copy["tables"]["oms_version"]["digest"] != good
    copy["tables"]["oms_version"]["digest"] = good
    rb_path.write_text(json.dumps(rb, indent=2))
    assert_passed(sandbox.runbook("rollback_429"), 8)
    events = [json.loads(x) for x in (sandbox.last_report("rollback_429") / "events.jsonl").read_text().splitlines()]
    verify = [e["action"] for e in events if e["step"] == "verify_restore" and "SUM(CRC32" in e["action"]]
    assert verify and all("MD5(" in a for a in verify)
