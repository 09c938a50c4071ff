"""The sandbox's contract (issue: Sandbox), point by point, on real engines and a real MariaDB."""

import json
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import STATE

pytestmark = pytest.mark.integration

DOC_TARGETS = {"/home/admin/conf/config.yaml", "/home/admin/logs", "/home/ds/store", "/home/ds/run"}


def health(ip: str) -> dict:
    with urllib.request.urlopen(f"http://{ip}:8089/oms/health", timeout=3) as r:
        return json.load(r)


def test_default_up_runs_the_documented_deployment(sandbox):
    env_file = sandbox.fresh()
    st = sandbox.status()
    assert st["env_file"] == env_file and Path(env_file).exists()
    assert {"host", "port", "user", "password", "rm", "cm", "cm_hb"} <= set(st["metadb"])
    assert st["metadb"]["rm"] == "rm_428" and st["metadb"]["cm_hb"] == ["cm_hb_428"]
    assert st["metadb"]["engine"] == "oceanbase" and "OceanBase" in st["metadb"]["version"]  # the default MetaDB
    assert set(st["console"]) == {"user", "password", "port", "cm_port", "scheme"}
    assert st["console"]["port"] == 8089 and st["console"]["cm_port"] == 8088 and st["variants"] == []
    assert len(st["nodes"]) == 2 and {n["ip"] for n in st["nodes"]} == {"127.0.0.11", "127.0.0.12"}
    for n in st["nodes"]:
        assert {"name", "region", "ip", "docker_host", "container", "image"} <= set(n)
        assert n["running"] and n["image"] == "oceanbase/oms:feature_4.2.8_ce"  # the tag form of 4.2.7 on
        c = sandbox.engine(n["name"]).containers.get(n["container"])
        hc = c.attrs["HostConfig"]
        assert {b.split(":")[1] for b in hc["Binds"]} == DOC_TARGETS
        assert hc["NetworkMode"] == "host" and hc["Privileged"] is True
        assert hc["PidsLimit"] in (None, 0, -1)  # the engine stores --pids-limit -1 (unlimited) as null
        assert [(u["Name"], u["Soft"], u["Hard"]) for u in hc["Ulimits"]] == [("nproc", 65535, 65535)]
        assert f"OMS_HOST_IP={n['ip']}" in c.attrs["Config"]["Env"]
        assert c.attrs["Config"]["Tty"] and c.attrs["Config"]["OpenStdin"]
        h = health(n["ip"])
        assert h["success"] is True and h["data"]["healthy"] is True and h["data"]["version"] == "4.2.8-CE"
        assert "OMS service start successfully" in c.logs(tail=50).decode()
    for version, path in st["packages"].items():
        assert Path(path).exists() and Path(path).stat().st_size > 10_000_000, version
    assert set(st["packages"]) == {"4.2.8-CE", "4.2.9-CE", "4.2.13-CE"}  # 4.2.13: the hot upgrade (OD 309)


def test_each_engine_runs_runc_through_a_front_that_trims_capabilities_only_where_they_are_given(sandbox, tmp_path):
    """The engines' runtime: create/run/exec go through the capability wrapper, the rest straight to runc."""
    import subprocess

    sandbox.fresh()
    for n in sandbox.status()["nodes"]:
        front = STATE / "nodes" / n["name"] / "runc"
        eng = sandbox.engine(n["name"])
        try:
            info = eng.info()
            assert info["DefaultRuntime"] == "sandbox-runc" and info["Runtimes"]["sandbox-runc"]["path"] == str(front)
            # a call without capabilities: runc's own answer, no interpreter in between
            p = subprocess.run([str(front), "--root", str(tmp_path), "state", "nosuch"], capture_output=True, text=True)
            assert p.returncode != 0 and "container does not exist" in p.stderr and "Traceback" not in p.stderr, (
                p.stderr
            )
            # a create: the wrapper reads the bundle's config.json first (here there is none)
            p = subprocess.run(
                [str(front), "--root", str(tmp_path), "create", "--bundle", str(tmp_path / "none"), "x"],
                capture_output=True,
                text=True,
            )
            assert p.returncode != 0 and "FileNotFoundError" in p.stderr and "config.json" in p.stderr, p.stderr
            # and the containers the engine made through it run privileged, as documented
            c = eng.containers.get(n["container"])
            assert c.attrs["HostConfig"]["Privileged"] is True and c.status == "running"
        finally:
            eng.close()


def test_heartbeats_grow_and_the_metadb_holds_every_table(sandbox):
    sandbox.fresh()
    st = sandbox.status()
    rm, cm, hb = st["metadb"]["rm"], st["metadb"]["cm"], st["metadb"]["cm_hb"][0]
    first = sandbox.sql("SELECT MAX(id), COUNT(*) FROM heatbeat_sequence", hb)[0]
    assert first[1] >= 100_000  # the default heartbeat table of realistic size
    time.sleep(2.5)
    assert sandbox.sql("SELECT MAX(id) FROM heatbeat_sequence", hb)[0][0] > first[0]
    tables = {db: {r[0] for r in sandbox.sql("SHOW TABLES", db)} for db in (rm, cm, hb)}
    assert {
        "oms_normal_config",
        "cluster_info",
        "oms_project",
        "oms_project_step",
        "oms_sync_project",
        "oms_version",
    } <= tables[rm]
    assert {"resource_group", "host", "config_job", "connector_task"} <= tables[cm]
    assert tables[hb] == {"heatbeat_sequence", "heart_beat"}
    ha = sandbox.ha()  # the documented default value, HA enabled: without the two keys of "Modify HA configurations"
    assert ha["enable"] is True and ha["checkHostDownIntervalSec"] == 540 and "refetchStoreIntervalMin" not in ha
    assert sandbox.sql("SELECT version FROM oms_version", rm) == [("4.2.8-CE",)]
    sources = [json.loads(r[0]) for r in sandbox.sql("SELECT source_config FROM connector_task", cm)]
    assert any("dbType" in s for s in sources) and any("db_type" in s for s in sources)
    assert any("dbType" not in s and "db_type" not in s for s in sources)
    sandbox.wait(
        lambda: (
            sandbox.sql("SELECT ip, host_status FROM host ORDER BY ip", cm)
            == [("127.0.0.11", "ONLINE"), ("127.0.0.12", "ONLINE")]
        ),
        20,
        "every host ONLINE",
    )
    beats = sandbox.sql(
        "SELECT host_ip, TIMESTAMPDIFF(SECOND, gmt_modified, NOW()) FROM heart_beat "
        "WHERE task_name='supervisor' ORDER BY host_ip",
        hb,
    )
    assert [b[0] for b in beats] == ["127.0.0.11", "127.0.0.12"] and all(b[1] <= 5 for b in beats)
    # the MetaDB user has a password; root has none over TCP
    import pymysql

    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host="127.0.0.1", port=st["metadb"]["port"], user="root", password="")


def test_up_again_with_the_same_arguments_reuses_what_runs(sandbox):
    sandbox.fresh()
    before = sandbox.containers()
    t0 = time.monotonic()
    sandbox.cli("up")
    assert time.monotonic() - t0 < 30
    assert sandbox.containers() == before
    other = sandbox.cli("up", "--nodes", "3", check=False)
    assert other.returncode == 1 and "run `python -m sandbox down` first" in other.stderr


def test_a_stopped_node_turns_offline_and_store_files_are_written(sandbox):
    """OFFLINE after ha.config's checkHostDownIntervalSec (540 s documented; set to 10 here, as an operator can)."""
    sandbox.fresh("--host-down-seconds", "10")
    rm = sandbox.status()["metadb"]["rm"]
    ha = json.loads(sandbox.sql("SELECT cfg_value FROM oms_normal_config WHERE cfg_name='ha.config'", rm)[0][0])
    assert ha["checkHostDownIntervalSec"] == 10 and "refetchStoreIntervalMin" not in ha  # the documented keys
    st = sandbox.status()
    store = STATE / "nodes" / "n1" / "data" / "oms" / "oms_store" / "store.checkpoint"
    assert store.exists() and int(store.read_text()) > 0
    assert list((STATE / "nodes" / "n1" / "data" / "oms" / "oms_run").iterdir())
    sandbox.engine("n2").containers.get("oms_ce").stop(timeout=10)
    sandbox.wait_offline("n2")
    assert sandbox.sql("SELECT ip, host_status FROM host ORDER BY ip", st["metadb"]["cm"]) == [
        ("127.0.0.11", "ONLINE"),
        ("127.0.0.12", "OFFLINE"),
    ]


def test_console_api_needs_basic_auth_and_speaks_the_envelope(sandbox):
    sandbox.fresh()
    req = urllib.request.Request("http://127.0.0.11:8089/api/v2?Action=ListProjects", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("no 401 without credentials")
    except urllib.error.HTTPError as e:
        assert e.code == 401 and json.load(e)["success"] is False


@pytest.mark.parametrize(
    ("args", "image", "nodes", "hb"),
    [
        (("--nodes", "3", "--regions", "2"), "4.2.8", 3, ["cm_hb_428_1", "cm_hb_428_2"]),
        (("--version", "4.1.0-CE"), "4.1.0", 2, ["cm_hb_410"]),
        (("--version", "3.3.0-CE", "--nodes", "1", "--metadb", "mariadb"), "3.3.0", 1, ["cm_hb_330"]),
    ],
)
def test_other_shapes_come_up_the_same_way(sandbox, args, image, nodes, hb):
    sandbox.fresh(*args)
    st = sandbox.status()
    assert st["metadb"]["cm_hb"] == hb and len(st["nodes"]) == nodes
    for n in st["nodes"]:
        assert n["running"] and n["image"].endswith((f":feature_{image}-ce", f":feature_{image}_ce"))
        assert health(n["ip"])["data"]["healthy"] is True
    if len(hb) == 2:  # one config per region (cm_region, heartbeat db), as obd writes them
        regions = {n["region"] for n in st["nodes"]}
        assert regions == {"region1", "region2"}


def test_ssh_nodes_are_real_ssh_hosts_talking_to_their_engine(sandbox):
    import subprocess

    sandbox.fresh("--ssh")
    st = sandbox.status()
    for n in st["nodes"]:
        assert n["ssh"]["host"] == f"ssh://root@{n['ip']}"
        p = subprocess.run(
            ["ssh", n["ip"], "docker", "inspect", "-f", "{{.Config.Env}}", "oms_ce"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert p.returncode == 0 and f"OMS_HOST_IP={n['ip']}" in p.stdout, p.stderr


def test_down_leaves_nothing_behind(sandbox):
    import subprocess

    sandbox.fresh("--ssh")
    sandbox.cli("down")
    assert not STATE.exists()
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(STATE) not in procs
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(STATE) not in mounts
    ssh_config = Path.home() / ".ssh" / "config"
    assert not ssh_config.exists() or "omsup sandbox" not in ssh_config.read_text()
