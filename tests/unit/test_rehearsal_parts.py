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
