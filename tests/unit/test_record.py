"""The run record: typed, atomic, 0600, resumable, never mixing environments, never redacted."""

import json
import os
import stat

import pytest

from omsup import redact
from omsup.errors import LedgerError
from omsup.record import Facts, NodeFacts, Record, RunStatus
from omsup.steps.ha import refetch_minutes

FACTS = Facts(target="4.2.9-CE", environment_file="/x/env.yaml")


def node(i: int) -> NodeFacts:
    return NodeFacts(
        container_id=f"c{i}",
        name="oms",
        image="i",
        image_id="sha256:0",
        binds=[],
        env=[],
        user_env={},
        version="4.2.8-CE",
        cm_nodes=[],
    )


def test_new_run_is_written_at_once_with_mode_0600(tmp_path):
    rec, resumed = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    assert not resumed and rec.path.exists()
    assert stat.S_IMODE(os.stat(rec.path).st_mode) == 0o600
    with rec.change() as f:
        f.t1 = "2026-11-23T01:00:00Z"
    assert json.loads(rec.path.read_text())["facts"]["t1"] == "2026-11-23T01:00:00Z"
    assert Record.load(rec.path).facts.t1 == "2026-11-23T01:00:00Z"


def test_unfinished_run_is_resumed_and_finished_one_is_not(tmp_path):
    rec, _ = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    rec.mark("preflight", "done")
    again, resumed = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    assert resumed and again.run_id == rec.run_id and again.step_done("preflight")
    again.finish(RunStatus.COMPLETE)
    third, resumed = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    assert not resumed and third.run_id != rec.run_id


def test_other_environment_is_not_resumed(tmp_path):
    Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    _, resumed = Record.open(tmp_path, "upgrade_429", "staging", FACTS.model_copy())
    assert not resumed


def test_the_record_keeps_values_as_they_are_even_when_they_contain_a_secret(tmp_path):
    """Redaction is for what leaves the process; a resume and a rollback read the record back as it was."""
    redact.clear()
    redact.register("admin")  # a console user or password that is also a path component
    try:
        rec, _ = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
        with rec.change() as f:
            f.nodes["n1"] = node(1).model_copy(update={"binds": ["/home/admin/conf.yaml:/home/admin/conf/config.yaml"]})
        again = Record.load(rec.path)
        assert again.facts.nodes["n1"].binds == ["/home/admin/conf.yaml:/home/admin/conf/config.yaml"]
    finally:
        redact.clear()


def test_an_unknown_fact_is_an_error_not_a_new_key(tmp_path):
    rec, _ = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    with pytest.raises(ValueError, match="t9"), rec.change() as f:
        f.t9 = "x"  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["", "{", "[]", '{"runbook": 5}', '{"facts": {"t1": 3}}', "null", "\x00\xff"])
def test_a_damaged_record_is_a_ledger_error(tmp_path, text):
    p = tmp_path / "upgrade_429" / "r1" / "ledger.json"
    p.parent.mkdir(parents=True)
    p.write_bytes(text.encode("latin-1"))
    with pytest.raises(LedgerError, match="unreadable|holds a value omsup does not write"):
        Record.load(p)


def good_ledger(tmp_path) -> dict:
    rec, _ = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    rec.mark("preflight", "done")
    return json.loads(rec.path.read_text())


@pytest.mark.parametrize(
    "where, value, key",
    [
        (("facts", "t1"), "garbage", "facts.t1"),
        (("facts", "t1"), "2026-12-06T01:02:03", "facts.t1"),  # naive: no zone
        (("facts", "t1"), "2026-02-30T01:02:03Z", "facts.t1"),  # no such day
        (("facts", "t1"), "2026-12-06T01:02:03Z\n", "facts.t1"),  # a trailing newline
        (("created",), 5, "created"),
        (("steps", "preflight", "status"), "half", "steps.preflight.status"),
        (("status",), "paused", "status"),
    ],
)
def test_a_ledger_that_parses_but_holds_bad_values_names_the_file_and_the_key(tmp_path, where, value, key):
    """They gave tracebacks in omsup status and in pytest_sessionfinish (no summary, a wrong exit code)."""
    d = good_ledger(tmp_path)
    at = d
    for k in where[:-1]:
        at = at[k]
    at[where[-1]] = value
    p = tmp_path / "upgrade_429" / "bad" / "ledger.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps(d))
    with pytest.raises(LedgerError) as e:
        Record.load(p)
    assert str(p) in e.value.message and f"key {key}:" in e.value.message, e.value.message


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "symlink"])
def test_a_ledger_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path, kind):
    import os
    import time

    p = tmp_path / "upgrade_429" / "r1" / "ledger.json"
    p.parent.mkdir(parents=True)
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "dev-zero":
        p.symlink_to("/dev/zero")
    elif kind == "folder":
        p.mkdir()
    else:
        (tmp_path / "real.json").write_text(json.dumps(good_ledger(tmp_path / "x")))
        p.symlink_to(tmp_path / "real.json")
    t0 = time.monotonic()
    with pytest.raises(LedgerError, match="unreadable"):
        Record.load(p)
    assert time.monotonic() - t0 < 5


def test_no_temporary_files_left_behind(tmp_path):
    rec, _ = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    for i in range(5):
        with rec.change() as f:
            f.backup_attempt = i
    assert [p.name for p in rec.path.parent.iterdir()] == ["ledger.json"]


def test_refetch_is_strictly_above_the_gap_plus_margin():
    assert refetch_minutes("2026-11-23T01:00:00Z", "2026-11-23T01:00:59Z", 0) == 1
    assert refetch_minutes("2026-11-23T01:00:00Z", "2026-11-23T01:01:00Z", 0) == 2
    assert refetch_minutes("2026-11-23T01:00:00Z", "2026-11-23T03:30:10Z", 5) == 151 + 5


def test_per_node_facts_from_concurrent_threads_are_all_kept(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    rec, _ = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    with rec.change() as f:
        f.nodes = {f"n{i}": node(i) for i in range(8)}

    def work(i: int) -> None:
        for k in range(20):
            with rec.change() as f:
                f.nodes[f"n{i}"].user_env[f"k{k}"] = str(k)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    on_disk = Record.load(rec.path).facts.nodes
    assert {n: len(v.user_env) for n, v in on_disk.items()} == {f"n{i}": 20 for i in range(8)}


def test_a_table_digest_from_a_ledger_without_kinds_reads_as_the_digest_it_was():
    from omsup.adapters.metadb import DIGEST, DIGESTS
    from omsup.record import TableStat

    old = TableStat.model_validate({"rows": 3, "digest": "1f-2e"})  # written before kinds were recorded
    assert old.kind == "crc32+md5" and old.kind in DIGESTS
    assert DIGEST in DIGESTS and DIGEST != old.kind
    with pytest.raises(ValueError):
        TableStat.model_validate({"rows": 3, "digest": "1f-2e", "kind": "crc32+len", "extra": 1})


def test_the_rollback_undoes_the_newest_upgrade_run_that_changed_something(tmp_path):
    """An upgrade run again by mistake after it completed is refused at its preflight: that run
    changed nothing and must not hide the completed one from the rollback (it once did, and the
    rollback then said there was nothing to roll back to)."""
    from types import SimpleNamespace

    from omsup.errors import PreconditionRefused
    from omsup.steps.restore import upgrade_record

    rollback = SimpleNamespace(
        runbook=SimpleNamespace(upgrade_runbook="upgrade_429"), env=SimpleNamespace(state_dir=tmp_path, name="prod")
    )
    with pytest.raises(PreconditionRefused, match="no run ledger of upgrade_429 for environment prod"):
        upgrade_record(rollback)
    first, _ = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    first.mark("preflight", "failed", error="refused")
    with pytest.raises(PreconditionRefused, match=f"changed anything: {first.run_id} stopped before"):
        upgrade_record(rollback)
    for key in ("preflight", "disable_ha", "stop_old", "prune_heartbeats", "backup"):
        first.mark(key, "done")
    first.finish(RunStatus.COMPLETE)
    again, resumed = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    assert not resumed
    again.mark("preflight", "failed", error="the deployment already runs 4.2.9-CE")
    elsewhere, _ = Record.open(tmp_path, "upgrade_429", "staging", FACTS.model_copy())
    elsewhere.mark("disable_ha", "done")
    assert upgrade_record(rollback).run_id == first.run_id
    again.mark("a_step_of_a_later_omsup", "failed", error="x")  # unknown to this version: counts as a change
    assert upgrade_record(rollback).run_id == again.run_id
    again.abandon("root@vm", "called off")
    assert upgrade_record(rollback).run_id == first.run_id
    first.abandon("root@vm", "called off too")  # (omsup abandon refuses a run past start_new; a unit test may)
    with pytest.raises(PreconditionRefused, match="but runs called off \\(omsup abandon\\): "):
        upgrade_record(rollback)


def test_an_unfinished_upgrade_that_was_rolled_back_is_not_resumed(tmp_path):
    """It stopped half way and its rollback completed: the next upgrade starts anew (its backups of
    the data as it is then), never from the old run's steps and backups."""
    from omsup.record import RolledBack

    rec, _ = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    rec.mark("backup", "done")
    rec.mark("start_new", "failed", error="x")
    again, resumed = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    assert resumed and again.run_id == rec.run_id
    rec.data.rolled_back = RolledBack(by="20261125T000000000000Z", at="2026-11-25T00:00:00Z")
    rec.save()
    fresh, resumed = Record.open(tmp_path, "upgrade_429", "prod", FACTS.model_copy())
    assert not resumed and fresh.run_id != rec.run_id and not fresh.step_done("backup")


def test_an_upgrade_neither_starts_nor_resumes_while_a_rollback_is_half_done(tmp_path):
    from types import SimpleNamespace

    from omsup.errors import PreconditionRefused
    from omsup.record import UpgradeRef
    from omsup.steps.preflight import no_rollback_under_way

    run = SimpleNamespace(env=SimpleNamespace(state_dir=tmp_path / "state", name="prod"))
    no_rollback_under_way(run)  # no state folder yet
    up, _ = Record.open(tmp_path / "state", "upgrade_429", "prod", FACTS.model_copy())
    up.finish(RunStatus.COMPLETE)
    rb, _ = Record.open(tmp_path / "state", "rollback_429", "prod", FACTS.model_copy())
    rb.mark("rollback_preflight", "done")
    with rb.change() as f:
        f.upgrade = UpgradeRef(
            run_id=up.run_id, ledger=str(up.path), t1=None, versions=None, backups=[], nodes={}, ha_before=None
        )
    no_rollback_under_way(run)  # its preflight only: nothing changed yet
    rb.mark("disable_ha", "done")
    rb.mark("stop_new", "failed", error="engine down")
    with pytest.raises(
        PreconditionRefused,
        match=rf"rollback run {rb.run_id} \(rollback_429\) of upgrade run {up.run_id} is unfinished "
        r"\(it began disable_ha, stop_new\).*\n  next: finish the rollback first: run rollback_429 again",
    ):
        no_rollback_under_way(run)
    no_rollback_under_way(SimpleNamespace(env=SimpleNamespace(state_dir=tmp_path / "state", name="staging")))
    rb.finish(RunStatus.COMPLETE)
    no_rollback_under_way(run)
