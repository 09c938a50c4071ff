"""Parts of the rehearsal that need no replica: the replica's config.yaml and the network's names."""

from __future__ import annotations

import pytest

from omsup.adapters.hosts import Host
from omsup.adapters.replica import ReplicaNet
from omsup.errors import PreconditionRefused
from omsup.steps.rehearsal import _mapped_config


def test_the_replicas_config_names_the_replica_and_the_scratch_metadb():
    prod = {
        "oms_meta_host": "10.0.0.1",
        "oms_meta_port": 2881,
        "oms_meta_user": "root@oms",
        "oms_meta_password": "prod-secret",
        "drc_rm_db": "rm_428",
        "cm_url": "http://10.0.0.2:8088",
        "cm_nodes": ["10.0.0.2", "10.0.0.3"],
        "nginx_server_port": 18089,
    }
    ips = {"10.0.0.2": "10.213.0.11", "10.0.0.3": "10.213.0.12"}
    meta = {"oms_meta_host": "10.213.0.1", "oms_meta_port": 2881, "oms_meta_user": "u", "oms_meta_password": "p"}
    got = _mapped_config(prod, ips, meta)
    assert got["cm_url"] == "http://10.213.0.11:8088" and got["cm_nodes"] == ["10.213.0.11", "10.213.0.12"]
    assert {k: got[k] for k in meta} == meta and "prod-secret" not in str(got)
    assert got["drc_rm_db"] == "rm_428" and got["nginx_server_port"] == 18089
    assert prod["cm_url"] == "http://10.0.0.2:8088"  # production's reading is not changed in place


def test_the_replica_network_has_short_names_and_its_own_addresses():
    net = ReplicaNet(Host("local://", "x"), "rh1a2b3c", 3, "10.213.0")
    assert net.hub == "rh1a2b3c-hub" and net.ns(3) == "rh1a2b3c-n3" and net.ip(3) == "10.213.0.13"
    assert len(f"{net.name}n32b") <= 15  # the longest veth name fits the kernel's limit
    with pytest.raises(PreconditionRefused, match="2-8 of"):
        ReplicaNet(Host("local://", "x"), "Bad-Name", 1)
    with pytest.raises(PreconditionRefused, match="1 to 32"):
        ReplicaNet(Host("local://", "x"), "rh", 33)


class Answers(Host):
    """A host whose commands answer from a table (nothing runs)."""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__("local://", "rehearsal host")
        self.answers = answers

    def run(self, command: str, *args: str, quiet: bool = False):  # type: ignore[no-untyped-def]
        from omsup.adapters.hosts import Result

        key = next(k for k in self.answers if command.startswith(k))
        return Result(0, self.answers[key], "")


def test_what_the_rehearsal_host_lacks_of_an_oms_node_is_named():
    from omsup.adapters.replica import lacks, parse_resources

    assert parse_resources("2\nMemTotal:       24570000 kB\n", "x") == (2, 24570000 * 1024)
    with pytest.raises(Exception, match="nproc and /proc/meminfo answered"):
        parse_resources("two\n", "x")
    small = Answers({"nproc": "2\nMemTotal: 12000000 kB\n", "df": "/dev/vda 100 50 60000000000 50% /\n"})
    got = lacks(small, "/var/lib/omsup", 2)
    assert got[0] == "2 cores (an OMS node asks 5)"
    assert got[1].startswith("11.4 GiB of memory (2 node(s) x 8 GB asked)")
    assert got[2] == "60 GB free in /var/lib/omsup (2 node(s) x 200 GB asked)"
    big = Answers({"nproc": "16\nMemTotal: 67108864 kB\n", "df": "/dev/vda 1 1 900000000000 1% /\n"})
    assert lacks(big, "/var/lib/omsup", 2) == []


def test_ha_as_written_names_each_key_the_product_did_not_keep():
    from omsup.steps.rehearsal import _ha_as_written

    read = {"enable": True, "refetchStoreIntervalMin": 30, "checkRequestIntervalSec": 600}
    assert _ha_as_written(False, {"set": 30}, read) == {
        "written": {"enable": True, "refetchStoreIntervalMin": 30},
        "differ": {},
        "kept": True,
    }
    got = _ha_as_written(False, {"set": 45}, {**read, "enable": False})
    assert got is not None and got["kept"] is False
    assert got["differ"] == {
        "enable": {"written": True, "read": False},
        "refetchStoreIntervalMin": {"written": 45, "read": 30},
    }
    got = _ha_as_written(True, None, read)  # perceiveStoreClientCheckpoint, absent when read: not kept
    assert got is not None and got["differ"] == {"perceiveStoreClientCheckpoint": {"written": True, "read": None}}
    assert _ha_as_written(False, {"set": 30}, None) is None  # the probe read nothing


def test_a_dump_that_ran_out_of_oceanbases_timeouts_is_told_from_other_failures():
    from omsup.steps.rehearsal import OB_TIMED_OUT

    for said in (
        "mysqldump: Couldn't execute 'SELECT ...': Timeout, query has reached the maximum query timeout: 10000000(us),"
        " maybe you should increase the ob_query_timeout in session (4012)",
        "mysqldump: Error 4012: Timeout",
        "mysqldump: Error 6210: Transaction is timeout when dumping table `heatbeat_sequence` at row: 1034",
    ):
        assert OB_TIMED_OUT.search(said), said
    for said in (
        "mysqldump: Got error: 1045: Access denied for user 'oms'@'10.0.0.1' (using password: YES)",
        "mysqldump: Error 2013: Lost connection to MySQL server during query when dumping table `t` at row: 40123",
        "bash: line 1: /backup/rm.sql.partial: No space left on device",
    ):
        assert not OB_TIMED_OUT.search(said), said


def test_the_change_ticket_says_what_the_probe_of_the_replica_read():
    from omsup.report import rehearsal_ticket

    after = {
        "assumptions": {"health": "holds", "start_line": "observed", "prune": "BROKEN"},
        "start_line": {"n1": "its docker_init.sh log", "n2": "nowhere (docker logs, docker_init.sh's log)"},
        "heartbeat_period_s": 2.1,
        "heartbeat_age_s": {"n1": 0.4},
        "ha_config": {"enable": True},
        "programs": {"n1": {"programs": {"nginx": "RUNNING"}}},
        "connectors": {"connectors": 0, "sample": []},
        "projects": {"projects": 1},
    }
    s = {
        "kind": "rehearsal",
        "rehearsal": {"observed": {"after_upgrade": after, "ha_as_written": {"kept": False, "differ": {"enable": 1}}}},
    }
    text = "\n".join(rehearsal_ticket(s))
    assert "after the upgrade, the probe: 2 of 3 assumptions held or observed, BROKEN: prune" in text
    assert "2.1 s until every heartbeat moved" in text and "its docker_init.sh log" in text
    assert "{'n1': {'nginx': 'RUNNING'}}" in text and "after the rollback" not in text
    assert "ha.config after the upgrade, as written: NOT kept: {'enable': 1}" in text
