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
