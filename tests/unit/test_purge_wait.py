"""The wait for InnoDB's purge after the online prune, before T1 (issue 15): it reads where the purge is,
waits until every transaction up to the prune is purged, gives up at its limit, and records what it saw."""

import json
import time

import pytest

from omsup.adapters.metadb import parse_innodb_purge
from omsup.errors import MetaDBProblem
from omsup.record import Facts, Record
from omsup.steps import heartbeats

MARIADB = """
------------
TRANSACTIONS
------------
Trx id counter 2787
Purge done for trx's n:o < 2771 undo n:o < 0 state: running
History list length 4
LIST OF TRANSACTIONS FOR EACH SESSION:
"""
MYSQL8 = """
------------
TRANSACTIONS
------------
Trx id counter 1814
Purge done for trx's n:o < 1812 undo n:o < 0 state: running but idle
History list length 0
"""


def test_the_purge_is_read_from_mariadb_and_mysql_8_status_alike():
    assert parse_innodb_purge(MARIADB) == (2787, 2771, 4)
    assert parse_innodb_purge(MYSQL8) == (1814, 1812, 0)
    assert parse_innodb_purge(MARIADB.replace("History list length 4", "")) is None
    assert parse_innodb_purge("") is None


class FakeMetaDB:
    """innodb_purge() answers from ``states`` (the last one repeats); query() takes ``delays`` seconds."""

    def __init__(self, states, delays=(0.0,)):
        self.states, self.delays = list(states), list(delays)
        self.calls = 0
        self.queries: list[tuple] = []

    def innodb_purge(self):
        self.calls += 1
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def count_heartbeats_below(self, db, top):
        return self.query("SELECT COUNT(*) FROM heatbeat_sequence WHERE id < %s", (top,), db)[0][0]

    def query(self, sql, args=None, db=None):
        self.queries.append((sql, args, db))
        delay = self.delays.pop(0) if len(self.delays) > 1 else self.delays[0]
        if isinstance(delay, Exception):
            raise delay
        time.sleep(delay)
        return [(0,)]


class FakeRun:
    def __init__(self, tmp_path, metadb):
        self.record, _ = Record.open(tmp_path, "upgrade_429", "t", Facts(target="4.2.9-CE", environment_file="e"))
        self.metadb = metadb
        self.shown: list[tuple[str, object]] = []

    @property
    def facts(self):
        return self.record.facts

    def live(self, text):
        pass

    def evidence(self, title, body):
        self.shown.append((title, body))


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(heartbeats, "PURGE_POLL_S", 0.01)
    monkeypatch.setattr(heartbeats, "PURGE_WAIT_S", 0.5)


BELOW = {"cm_hb_1": 6553500}


def test_on_innodb_it_waits_until_every_transaction_up_to_the_prune_is_purged(tmp_path, quick):
    db = FakeMetaDB([(500, 100, 40), (510, 300, 20), (520, 499, 3), (530, 505, 1)])
    run = FakeRun(tmp_path, db)
    heartbeats.wait_for_purge(run, BELOW)
    assert db.calls == 4 and not db.queries  # 499 < 500 still waits; 505 >= 500 ends it
    w = json.loads(run.record.path.read_text())["facts"]["prune_purge"]
    assert w["settled"] is True and w["method"].startswith("InnoDB purge")
    assert w["seen"] == {"trx_counter": 500, "purged_below": 505, "history_length": 1}
    assert run.shown[-1][0] == "the MetaDB removed the deleted heartbeats before T1"


def test_it_gives_up_at_its_limit_and_says_so(tmp_path, quick):
    db = FakeMetaDB([(500, 100, 40)])  # an old read view holds the purge back
    run = FakeRun(tmp_path, db)
    heartbeats.wait_for_purge(run, BELOW)
    w = run.facts.prune_purge
    assert w is not None and w.settled is False and w.seen["purged_below"] == 100 and w.seconds >= 0.5
    assert "had not removed" in run.shown[-1][0]


def test_without_innodb_status_it_waits_until_the_pruned_range_reads_quickly(tmp_path, quick):
    db = FakeMetaDB([None], delays=[0.15, 0.12, 0.0])  # OceanBase: deleted rows go with its compactions
    run = FakeRun(tmp_path, db)
    heartbeats.wait_for_purge(run, BELOW)
    assert [q[1:] for q in db.queries] == [((6553500,), "cm_hb_1")] * 3
    assert db.queries[0][0] == "SELECT COUNT(*) FROM heatbeat_sequence WHERE id < %s"
    w = run.facts.prune_purge
    assert w is not None and w.settled is True and w.seen["read_s"]["cm_hb_1"] < heartbeats.SCAN_QUICK_S


def test_a_range_that_stays_slow_ends_the_wait_at_its_limit(tmp_path, quick):
    run = FakeRun(tmp_path, FakeMetaDB([None], delays=[0.2]))
    heartbeats.wait_for_purge(run, BELOW)
    w = run.facts.prune_purge
    assert w is not None and w.settled is False and w.seen["read_s"]["cm_hb_1"] >= 0.2


def test_a_read_that_fails_is_not_quick_and_does_not_stop_the_run(tmp_path, quick):
    timeout = MetaDBProblem("MetaDB x: `SELECT ...` failed: (4012, 'Timeout')")
    run = FakeRun(tmp_path, FakeMetaDB([None], delays=[timeout, 0.0]))
    heartbeats.wait_for_purge(run, BELOW)
    w = run.facts.prune_purge
    assert w is not None and w.settled is True and isinstance(w.seen["read_s"]["cm_hb_1"], float)
    run = FakeRun(tmp_path / "2", FakeMetaDB([None], delays=[timeout]))
    heartbeats.wait_for_purge(run, BELOW)
    w = run.facts.prune_purge
    assert w is not None and w.settled is False and "4012" in w.seen["read_s"]["cm_hb_1"]
