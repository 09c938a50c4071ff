"""The deployment (issue 28, point 5): its adapters are built from the environment file alone; a run hands it what
it recorded, and it uses that before reaching any node."""

from __future__ import annotations

from omsup import envfile
from omsup.context import Deployment, RecordedBy
from omsup.record import Facts, NodeFacts, Record

from .envfiles import write


def env_of(tmp_path, monkeypatch):
    monkeypatch.setenv("OMSUP_TEST_PW", "meta-pw-9Kx!")
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "console-pw-7Yq!")
    return envfile.load(str(write(tmp_path)))


def test_a_deployment_needs_only_the_environment_file(tmp_path, monkeypatch):
    env = env_of(tmp_path, monkeypatch)
    d = Deployment(env)
    assert set(d.hosts) == set(d.engines) == set(d.consoles) == {"n1", "n2"}
    assert d.hosts["n1"].spec == "ssh://admin@10.0.0.2" and d.engines["n2"].url == "unix:///var/run/docker.sock"
    assert d.metadb.label == "10.0.0.1:2881"
    assert d.backup_host.spec == "local://" and d.backup_host.node == "n2"  # the backup host is node n2's
    assert d.console_port("n1") == 8089  # the environment file says it: nothing read on the node


def test_a_run_hands_the_deployment_what_its_preflight_recorded(tmp_path, monkeypatch):
    env = env_of(tmp_path, monkeypatch)
    rec = Record.in_memory("upgrade_429", env.name, Facts(target="4.2.9-CE", environment_file=env.source))
    with rec.change() as f:
        f.nodes["n1"] = NodeFacts(
            container_id="c1", name="oms_428", image="oms:4.2.8", image_id="i1", binds=[], env=[], user_env={},
            version="4.2.8-CE", cm_nodes=[], console_port=18089, cm_port=18088,
        )  # fmt: skip
    d = Deployment(env, RecordedBy(rec))
    # n1 is an ssh:// host nobody answers for: the ports come from the record, no command is run
    assert d.node_ports("n1") == (18089, 18088)
    assert d.cm("10.0.0.2").base == "http://10.0.0.2:18088"
    assert d.recorded.container("n1") == "c1" and d.recorded.container("n2") is None
