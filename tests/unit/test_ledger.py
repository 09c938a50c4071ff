"""The run ledger: atomic, 0600, resumable, never mixing environments."""

import json
import os
import stat

from omsup import redact
from omsup.ledger import COMPLETE, Ledger
from omsup.steps.common import refetch_minutes


def test_new_run_is_written_at_once_with_mode_0600(tmp_path):
    led, resumed = Ledger.open(tmp_path, "upgrade_429", "prod", {"target": "4.2.9-CE"})
    assert not resumed and led.path.exists()
    assert stat.S_IMODE(os.stat(led.path).st_mode) == 0o600
    led.set("t1", "2026-11-23T01:00:00Z")
    assert json.loads(led.path.read_text())["facts"]["t1"] == "2026-11-23T01:00:00Z"


def test_unfinished_run_is_resumed_and_finished_one_is_not(tmp_path):
    led, _ = Ledger.open(tmp_path, "upgrade_429", "prod", {})
    led.mark("preflight", "done")
    again, resumed = Ledger.open(tmp_path, "upgrade_429", "prod", {})
    assert resumed and again.run_id == led.run_id and again.step_done("preflight")
    again.finish(COMPLETE)
    third, resumed = Ledger.open(tmp_path, "upgrade_429", "prod", {})
    assert not resumed and third.run_id != led.run_id


def test_other_environment_is_not_resumed(tmp_path):
    Ledger.open(tmp_path, "upgrade_429", "prod", {})
    _, resumed = Ledger.open(tmp_path, "upgrade_429", "staging", {})
    assert not resumed


def test_secrets_never_reach_the_ledger(tmp_path):
    redact.clear()
    redact.register("SuperSecret99")
    led, _ = Ledger.open(tmp_path, "upgrade_429", "prod", {})
    led.set("note", "password SuperSecret99")
    assert "SuperSecret99" not in led.path.read_text()
    redact.clear()


def test_no_temporary_files_left_behind(tmp_path):
    led, _ = Ledger.open(tmp_path, "upgrade_429", "prod", {})
    for i in range(5):
        led.set(f"k{i}", i)
    assert [p.name for p in led.path.parent.iterdir()] == ["ledger.json"]


def test_refetch_is_strictly_above_the_gap_plus_margin():
    assert refetch_minutes("2026-11-23T01:00:00Z", "2026-11-23T01:00:59Z", 0) == 1
    assert refetch_minutes("2026-11-23T01:00:00Z", "2026-11-23T01:01:00Z", 0) == 2
    assert refetch_minutes("2026-11-23T01:00:00Z", "2026-11-23T03:30:10Z", 5) == 151 + 5


def test_per_node_facts_from_concurrent_threads_are_all_kept(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    led, _ = Ledger.open(tmp_path, "upgrade_429", "prod", {})

    def work(i: int) -> None:
        for k in range(20):
            led.set_in("nodes", f"n{i}", f"k{k}", k)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    on_disk = json.loads(led.path.read_text())["facts"]["nodes"]
    assert {n: len(v) for n, v in on_disk.items()} == {f"n{i}": 20 for i in range(8)}
