"""The dress rehearsal (issue 29): rehearse_429 on the 2-node sandbox as production rehearses upgrade_429 and
rollback_429 on a replica built from the sandbox's own images and metadata, changes nothing of production, and
writes rehearsal.json; upgrade_429 --rehearsal then follows it, and a rehearsal of something else is refused before
any change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import STATE
from .test_metadb import unchanged
from .test_upgrade_429 import assert_passed, assert_stopped_at

pytestmark = pytest.mark.integration


def namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith("rh")]


def rehearse(sandbox, *args: str, name: str = "rehearse_429") -> tuple[subprocess.CompletedProcess, dict, Path]:
    p = sandbox.runbook(name, *args)
    folder = sandbox.last_report(name)
    found = folder / "rehearsal.json"
    return p, json.loads(found.read_text()) if found.exists() else {}, found


def test_rehearse_then_production_follows_the_rehearsal(sandbox):
    sandbox.fresh()
    same = unchanged(sandbox)
    before = namespaces()
    plan = sandbox.runbook("rehearse_429", "--plan")  # the checks, nothing taken, no replica
    assert plan.returncode == 0, plan.output[-3000:]
    (planned,) = sandbox.reports.glob("plan-rehearse_429-sandbox-*")
    assert "hub namespace" in (planned / "summary.md").read_text()
    assert not list((STATE / "ledgers" / "rehearsals").glob("*")) and namespaces() == before
    p, r, path = rehearse(sandbox)
    assert_passed(p, 5)
    same()  # production: the same tables (heartbeats aside), containers and ha.config
    assert namespaces() == before  # the replica is gone
    assert r["upgrade"]["exit_code"] == 0 and r["rollback"]["exit_code"] == 0, r
    ident = r["identities"]
    old = sandbox.containers()["n1"]["oms_ce"]
    assert ident["old_image_id"] and len(ident["package_sha256"]) == 64 and "OceanBase" in str(ident["metadb"])
    assert set(ident["dumps"]) == set(sandbox.databases())
    obs = r["observed"]
    assert obs["oms_version"]["names_the_target"] is True and obs["init_flag_written"] is False
    assert all(a["rc"] == 0 for tries in obs["init"].values() for a in tries) and obs["init"]
    assert r["outage_seconds"] and r["outage_seconds"] > 0
    # the probe of the replica after each rehearsed runbook: what the product did, as every reading shows it
    for which, version in (("upgrade", "4.2.9-CE"), ("rollback", "4.2.8-CE")):
        after = obs[f"after_{which}"]
        assert after["assumptions"] and "BROKEN" not in after["assumptions"].values(), after["assumptions"]
        assert set(after["start_line"]) == {"n1", "n2"} and isinstance(after["heartbeat_period_s"], float), after
        assert {s["node"] for s in after["servers"]} == {"n1", "n2"}, after["servers"]
        assert after["oms_version"]["observed"] == "names the running version", after["oms_version"]
        assert version in str(after["oms_version"]["rows"]) and after["ha_config"]["enable"] is True, after
    assert obs["ha_as_written"]["kept"] is True and obs["ha_as_written"]["written"]["enable"] is True, obs
    compared = r["rollback_comparison"]
    assert compared["verify_restore"] == "passed" and set(compared["tables"]) == set(sandbox.databases()), compared
    assert set(r["replica"]["network"]["nodes"]) == {"n1", "n2"}
    assert all(ip.startswith("10.213.0.") for ip in r["replica"]["network"]["nodes"].values())
    summary = json.loads((sandbox.last_report("rehearse_429") / "summary.json").read_text())
    assert summary["rehearsal"]["upgrade"] == "complete" and summary["rehearsal"]["rollback"] == "complete"
    # no secret anywhere it left: its run folder, the replica's runs and what stays of the replica
    st = sandbox.status()
    secrets = [st["metadb"]["password"], (STATE / "secrets" / "console_password").read_text().strip()]
    rh = Path(r["replica"]["env_file"]).parent
    assert not (rh / "secrets").exists() and not list(rh.glob("n*/conf"))
    for f in [*sandbox.last_report("rehearse_429").rglob("*"), *rh.rglob("*")]:
        if f.is_file() and f.suffix != ".sql":  # the dumps are production's metadata, as its backups are
            text = f.read_bytes().decode("utf-8", "replace")
            assert not [x for x in secrets if x in text], f
    ticket = (sandbox.last_report("rehearse_429") / "summary.md").read_text()
    for part in ("## What was cloned", "## What ran", "## What the product did", "## What production will do",
                 "after the upgrade, the probe:", "about the heartbeat period", "ha.config after the upgrade, as written: kept"):  # fmt: skip
        assert part in ticket, ticket
    assert ident["old_image_id"] in ticket and "upgrade_429: complete" in ticket
    st = subprocess.run(
        [sys.executable, "-m", "omsup", "status", "--env", sandbox.env_file, "--json"], capture_output=True, text=True
    )
    listed = json.loads(st.stdout)["rehearsals"]
    assert [x["rehearsal"] for x in listed] == [r["rehearsal"]] and listed[0]["outage_seconds"] == r["outage_seconds"]

    # a rehearsal of another package is refused before any change
    other = json.loads(path.read_text())
    other["identities"]["package_sha256"] = "0" * 64
    tampered = path.parent / "other-package.json"
    tampered.write_text(json.dumps(other))
    refused = sandbox.runbook("upgrade_429", "--rehearsal", str(tampered))
    assert refused.returncode == 10, refused.output[-2000:]
    assert_stopped_at(refused, 0, "did not rehearse what is about to run", "SHA-256")
    same()
    assert sandbox.containers()["n1"]["oms_ce"]["id"] == old["id"]

    up = sandbox.runbook("upgrade_429", "--rehearsal", str(path))
    assert_passed(up, 11)
    s = json.loads((sandbox.last_report("upgrade_429") / "summary.json").read_text())
    assert s["rehearsal"]["rehearsed"] is True and s["rehearsal"]["rehearsal"] == r["rehearsal"]
    md = (sandbox.last_report("upgrade_429") / "summary.md").read_text()
    assert f"Rehearsed on {r['at']}" in md and "outage" in md


def test_the_dumps_run_within_the_tenants_timeouts_and_raise_them_only_when_run_out(sandbox):
    """Production's OMS runs during a rehearsal: each dump runs within the tenant's current timeouts; one that runs
    out of them (4012) is taken again with them raised (the backup step's code) and set back right after. What a
    killed rehearsal left raised, noted in its folder, the next one sets back first."""
    sandbox.fresh()  # OceanBase seekdb
    # hinted: with the global at one microsecond a plain SELECT of the test's own runs out now and then
    timeouts = (
        "SELECT /*+ QUERY_TIMEOUT(10000000) */ @@global.ob_query_timeout, @@global.ob_trx_timeout, "
        "@@global.ob_trx_idle_timeout"
    )
    default = sandbox.sql(timeouts)[0]
    folder = STATE / "ledgers" / "rehearsals"
    p = sandbox.runbook("rehearse_429", "--until", "0")  # within the default timeouts: nothing raised
    assert_passed(p, 1)
    (first,) = folder.glob("*/dumps")
    assert not list(first.glob("*.timed-out")) and sandbox.sql(timeouts)[0] == default
    events = (sandbox.last_report("rehearse_429") / "events.jsonl").read_text()
    assert "SET GLOBAL" not in events

    sandbox.sql("SET GLOBAL ob_query_timeout = 1")  # one microsecond: every dump runs out of it
    try:
        p = sandbox.runbook("rehearse_429", "--until", "0")
        after = sandbox.sql(timeouts)[0]
    finally:
        sandbox.sql(f"SET GLOBAL ob_query_timeout = {default[0]}")
    assert_passed(p, 1)
    assert after == (1, *default[1:]), after  # set back
    (second,) = [d for d in folder.glob("*/dumps") if d != first]
    assert list(second.glob("*.timed-out")) and all(s.stat().st_size > 0 for s in second.glob("*.sql"))
    assert not list(second.parent.glob("ob_globals_before.json"))  # the note goes once they are set back
    events = [json.loads(x) for x in (sandbox.last_report("rehearse_429") / "events.jsonl").read_text().splitlines()]
    assert [e for e in events if e["action"].startswith("SET GLOBAL ob_query_timeout = 86400000000")], events

    # a rehearsal killed between the raise and the set-back: the next one sets back what it noted
    sandbox.sql("SET GLOBAL ob_query_timeout = 86400000000")
    note = second.parent / "ob_globals_before.json"
    st = sandbox.status()["metadb"]
    note.write_text(json.dumps({"metadb": f"{st['host']}:{st['port']}", "before": {"ob_query_timeout": 7000000}}))
    try:
        p = sandbox.runbook("rehearse_429", "--until", "0")
        left = sandbox.sql(timeouts)[0]
    finally:
        sandbox.sql(f"SET GLOBAL ob_query_timeout = {default[0]}")
    assert_passed(p, 1)
    assert left[0] == 7000000 and not note.exists(), left


@pytest.mark.parametrize("variant", ["oms-version-not-written", "init-flag"])
def test_a_rehearsal_observes_the_variant_and_production_on_it_follows(sandbox, variant):
    """Point 8: what the rehearsal observes is the variant's behaviour, and production on the same variant does as
    rehearsed (no 'not as rehearsed' warning)."""
    sandbox.fresh("--variant", variant)
    p, r, path = rehearse(sandbox)
    assert_passed(p, 5)
    obs = r["observed"]
    if variant == "oms-version-not-written":
        assert obs["oms_version"]["names_the_target"] is False and obs["init_flag_written"] is False, obs
    else:
        assert obs["oms_version"]["names_the_target"] is True and obs["init_flag_written"] is True, obs
    up = sandbox.runbook("upgrade_429", "--rehearsal", str(path))
    assert_passed(up, 11)
    s = json.loads((sandbox.last_report("upgrade_429") / "summary.json").read_text())
    assert not [w for w in s["warnings"] if "not as rehearsed" in w], s["warnings"]


def test_production_that_does_otherwise_than_its_rehearsal_is_warned_about(sandbox):
    """Rehearsed on the default stand-in, run on one whose init does not write oms_version: the same images,
    package and MetaDB (the rehearsal matches), the run passes on the documented signals and says it differed."""
    sandbox.fresh()
    p, r, path = rehearse(sandbox)
    assert_passed(p, 5)
    assert r["observed"]["oms_version"]["names_the_target"] is True
    sandbox.fresh("--variant", "oms-version-not-written")
    up = sandbox.runbook("upgrade_429", "--rehearsal", str(path))
    assert_passed(up, 11)
    s = json.loads((sandbox.last_report("upgrade_429") / "summary.json").read_text())
    assert any("not as rehearsed: oms_version names the target: rehearsal True, production False" in w
               for w in s["warnings"]), s["warnings"]  # fmt: skip


def test_rehearse_331_on_a_3_3_0_deployment(sandbox):
    """Every cold upgrade has its rehearsal, from the same code: the 3.x one (with the Connector fix) too."""
    sandbox.fresh("--version", "3.3.0-CE", "--nodes", "1")
    same = unchanged(sandbox)
    p, r, _ = rehearse(sandbox, name="rehearse_331")
    assert_passed(p, 5)
    same()
    assert r["upgrade"]["exit_code"] == 0 and r["rollback"]["exit_code"] == 0 and r["target"] == "3.3.1-CE"


def test_a_deployment_whose_consoles_serve_https_is_rehearsed_with_the_replicas_own_certificates(sandbox):
    """Consoles serving HTTPS (the certificate mounted, doc 003/004): the replica's consoles serve HTTPS too, with
    certificates a CA made for the rehearsal signs for the replica's addresses; production's keys are not copied,
    and the rehearsed runbooks verify the replica's consoles with that CA."""
    sandbox.fresh("--https")
    same = unchanged(sandbox)
    p, r, path = rehearse(sandbox)
    assert_passed(p, 5)
    same()
    assert "own certificates" in str(r["replica"]["https"]), r["replica"]
    env = yaml.safe_load(Path(r["replica"]["env_file"]).read_text())
    assert env["console"]["scheme"] == "https" and env["console"]["ca_file"].endswith("/tls/ca.crt"), env["console"]
    assert not Path(r["replica"]["env_file"]).parent.joinpath("tls").exists()  # its keys went with the replica
    assert r["observed"]["after_upgrade"]["health"], r["observed"]["after_upgrade"]
    keys = list((STATE / "nodes").rglob("https_key"))
    assert keys  # the sandbox's nodes serve HTTPS with these
    rh = Path(r["replica"]["env_file"]).parent
    for k in keys:  # production's key is nowhere in what the rehearsal left
        secret = k.read_bytes()
        assert not [f for f in rh.rglob("*") if f.is_file() and secret in f.read_bytes()], k
    up = sandbox.runbook("upgrade_429", "--rehearsal", str(path))
    assert_passed(up, 11)


@pytest.fixture
def scratch_mariadb(tmp_path):
    """A MariaDB server for rehearsals on 127.0.0.78:3310 (a loopback address of this machine, as a server the user
    names would be), its user `rehearsals` with a password, started and removed by the test."""
    import secrets as pysecrets
    import shutil
    import time

    import pymysql

    if shutil.which("mariadbd") is None:
        pytest.fail("mariadbd is not installed (the README's setup installs mariadb-server)")
    data, sock = tmp_path / "scratch-data", tmp_path / "scratch.sock"
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    proc = subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={sock}", f"--pid-file={tmp_path}/scratch.pid",
         "--port=3310", "--bind-address=127.0.0.78", "--user=root", "--skip-name-resolve",
         "--innodb-buffer-pool-size=64M", "--character-set-server=utf8mb4", f"--log-error={tmp_path}/scratch.err"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:  # the server goes with the test, however its set-up ends
        deadline = time.monotonic() + 60
        ping = ["mariadb-admin", "--no-defaults", f"--socket={sock}", "--user=root", "ping"]
        while subprocess.run(ping, capture_output=True, timeout=30).returncode != 0:  # no socket of ours left open
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "scratch.err").read_text()
            time.sleep(0.3)
        root = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
        password = "Scr4tch-" + pysecrets.token_urlsafe(12)
        with root.cursor() as cur:
            cur.execute("CREATE USER rehearsals@'%%' IDENTIFIED BY %s", (password,))
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO rehearsals@'%'")
        root.close()
        pw_file = tmp_path / "scratch-password"
        pw_file.write_text(password)
        pw_file.chmod(0o600)

        def databases() -> set[str]:
            c = pymysql.connect(unix_socket=str(sock), user="root")
            with c.cursor() as cur:
                cur.execute("SHOW DATABASES")
                found = {r[0] for r in cur.fetchall()}
            c.close()
            return found - {"information_schema", "mysql", "performance_schema", "sys"}

        yield {"host": "127.0.0.78", "port": 3310, "user": "rehearsals", "password": {"file": str(pw_file)}}, databases
    finally:
        proc.terminate()
        proc.wait(60)


def test_a_mariadb_metadb_is_rehearsed_on_the_scratch_server_the_user_names(sandbox, scratch_mariadb):
    """Point 3: where the MetaDB is MySQL or MariaDB the user names a scratch server: without one the rehearsal is
    refused saying so; one that holds the databases (or is production's) is refused; with one, the replica's
    databases are made there, reached from the replica through a relay alone, and dropped afterwards."""
    scratch, databases = scratch_mariadb
    sandbox.fresh("--metadb", "mariadb")
    same = unchanged(sandbox)
    p = sandbox.runbook("rehearse_429")
    assert p.returncode == 10, p.output[-2000:]
    assert_stopped_at(p, 0, "the MetaDB is MariaDB", "rehearsal.metadb")
    st = sandbox.status()["metadb"]
    prod = {**scratch, "host": st["host"], "port": st["port"]}
    as_prod = sandbox.edited_env(lambda d: d.setdefault("rehearsal", {}).update(metadb=prod))
    p = sandbox.runbook("rehearse_429", env_file=as_prod)
    assert p.returncode == 10 and "is production's MetaDB" in p.output, p.output[-2000:]
    env = sandbox.edited_env(lambda d: d.setdefault("rehearsal", {}).update(metadb=scratch))
    p = sandbox.runbook("rehearse_429", env_file=env)
    assert_passed(p, 5)
    same()
    folder = sandbox.last_report("rehearse_429")
    r = json.loads((folder / "rehearsal.json").read_text())
    assert r["upgrade"]["exit_code"] == 0 and r["rollback"]["exit_code"] == 0, r
    assert databases() == set(), databases()  # what it made there went with the replica
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["rehearsal"]["scratch_metadb"]["server"] == "127.0.0.78:3310", summary["rehearsal"]
    assert summary["rehearsal"]["scratch_metadb"]["engine"] == "MariaDB"
    password = Path(scratch["password"]["file"]).read_text()
    for f in folder.rglob("*"):
        assert not (f.is_file() and password in f.read_text(errors="replace")), f
    up = sandbox.runbook("upgrade_429", "--rehearsal", str(folder / "rehearsal.json"))
    assert_passed(up, 11)


def test_a_scratch_server_that_holds_the_databases_is_refused(sandbox, scratch_mariadb):
    import pymysql

    scratch, databases = scratch_mariadb
    sandbox.fresh("--metadb", "mariadb", "--nodes", "1")
    rm = sandbox.status()["metadb"]["rm"]
    c = pymysql.connect(host="127.0.0.78", port=3310, user="rehearsals",
                        password=Path(scratch["password"]["file"]).read_text(), autocommit=True)  # fmt: skip
    with c.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{rm}`")
    c.close()
    env = sandbox.edited_env(lambda d: d.setdefault("rehearsal", {}).update(metadb=scratch))
    p = sandbox.runbook("rehearse_429", env_file=env)
    assert p.returncode == 10, p.output[-2000:]
    assert_stopped_at(p, 0, f"holds {rm} already", "--keep-replica")
    assert databases() == {rm}  # nothing written there
