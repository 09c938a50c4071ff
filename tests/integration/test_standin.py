"""The stand-in is as strict as the real OMS where the real OMS is strict (issue: only what a real OMS offers).

Each test shows a strictness biting: the behaviour the runbooks used to rely on would fail it.
Everything is looked at from outside, as an operator would (docker exec, curl-like requests, SQL).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from .conftest import STATE, without_volatile

pytestmark = pytest.mark.integration


def console(
    action: str, body: dict | None = None, password: str | None = None, ip: str = "127.0.0.11"
) -> tuple[int, dict]:
    pw = password if password is not None else (STATE / "secrets" / "console_password").read_text("utf-8")
    req = urllib.request.Request(
        f"http://{ip}:8089/api/v2?Action={action}", data=json.dumps(body or {}).encode(), method="POST"
    )
    req.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{pw}".encode()).decode())
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.load(e)


def cm(path: str, query: dict | None = None, form: dict | None = None) -> dict:
    url = f"http://127.0.0.11:8088{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = urllib.parse.urlencode(form).encode() if form else b""
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=5) as r:
        return json.load(r)


def exec_in(sandbox, node: str, *cmd: str, env: dict | None = None) -> tuple[int, str]:
    eng = sandbox.engine(node)
    try:
        r = eng.containers.get("oms_ce").exec_run(list(cmd), environment=env)
        return r.exit_code, r.output.decode()
    finally:
        eng.close()


def upgrade_mode_container(sandbox, node: str) -> None:
    """The 4.2.9 image started as doc 004 has it (IS_UPGRADE=true), in place of the node's 4.2.8 container."""
    eng = sandbox.engine(node)
    try:
        _upgrade_mode(eng)
    finally:
        eng.close()


def _upgrade_mode(eng) -> None:
    import glob

    old = eng.containers.get("oms_ce")
    old.stop(timeout=10)
    old.rename("oms_ce-old")
    (pkg,) = glob.glob(f"{STATE}/packages/oms_4.2.9*")
    with open(pkg, "rb") as f:
        (image,) = eng.images.load(f)
    ip = next(e.split("=", 1)[1] for e in old.attrs["Config"]["Env"] if e.startswith("OMS_HOST_IP="))
    eng.containers.run(
        image.tags[0],
        name="oms_ce",
        detach=True,
        tty=True,
        network_mode="host",
        privileged=True,
        volumes=old.attrs["HostConfig"]["Binds"],
        environment={"OMS_HOST_IP": ip, "IS_UPGRADE": "true"},
    )


def test_supervisorctl_behaves_like_supervisor_4(sandbox):
    sandbox.fresh()
    sandbox.wait(lambda: exec_in(sandbox, "n1", "supervisorctl", "status")[0] == 0, 30, "every program RUNNING")
    rc, out = exec_in(sandbox, "n1", "supervisorctl", "status")
    assert rc == 0 and {"nginx", "oms_console", "oms_drc_cm", "oms_drc_supervisor", "sshd", "crond"} <= {
        line.split()[0] for line in out.splitlines()
    }
    assert all(" RUNNING " in line for line in out.splitlines())
    assert exec_in(sandbox, "n1", "supervisorctl", "version")[1].startswith("4.")
    # a program that is not RUNNING makes `status` exit 3 (supervisor 4): an `rc == 0` readiness never comes
    exec_in(sandbox, "n1", "supervisorctl", "stop", "oms_console")
    rc, out = exec_in(sandbox, "n1", "supervisorctl", "status")
    assert rc == 3 and any(line.startswith("oms_console") and "STOPPED" in line for line in out.splitlines())
    # nginx answers 502 while its backend (oms_console) is down
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.11:8089/oms/health", timeout=5)
    assert e.value.code == 502
    e.value.close()
    exec_in(sandbox, "n1", "supervisorctl", "start", "oms_console")
    assert exec_in(sandbox, "n1", "supervisorctl", "status")[0] == 0
    # as supervisor's: `start`/`stop` come back only once `status` shows what they did, every time
    for _ in range(5):
        exec_in(sandbox, "n1", "supervisorctl", "stop", "oms_console")
        assert exec_in(sandbox, "n1", "supervisorctl", "status", "oms_console")[0] == 3
        exec_in(sandbox, "n1", "supervisorctl", "start", "oms_console")
        assert exec_in(sandbox, "n1", "supervisorctl", "status", "oms_console")[0] == 0


def test_a_program_that_dies_starting_backs_off_then_goes_fatal_as_supervisor_does(sandbox):
    """supervisor's defaults: `start` answers abnormal termination (exit 7) for a program that dies before
    its start delay; it is BACKOFF between tries, FATAL after the fourth; a retry that works needs no hand."""
    sandbox.fresh()
    sandbox.wait(lambda: exec_in(sandbox, "n1", "supervisorctl", "status")[0] == 0, 30, "every program RUNNING")
    assert exec_in(sandbox, "n1", "supervisorctl", "stop", "oms_console")[0] == 0
    rc, out = exec_in(sandbox, "n1", "supervisorctl", "stop", "oms_console")  # nothing to stop: said, exit 0
    assert (rc, out.strip()) == (0, "oms_console: ERROR (not running)")
    assert exec_in(sandbox, "n1", "supervisorctl", "stop", "nosuch") == (1, "nosuch: ERROR (no such process)\n")
    sandbox.cli("fault", "program-crash", "--node", "n1")
    rc, out = exec_in(sandbox, "n1", "supervisorctl", "start", "oms_console")
    assert (rc, out.strip()) == (7, "oms_console: ERROR (abnormal termination)")

    def state() -> str:
        return exec_in(sandbox, "n1", "supervisorctl", "status", "oms_console")[1].split()[1]

    assert state() in ("BACKOFF", "STARTING")
    rc, out = exec_in(sandbox, "n1", "supervisorctl", "start", "oms_console")
    assert (rc, out.strip()) == (0, "oms_console: ERROR (already started)")  # BACKOFF counts as started
    sandbox.wait(lambda: state() == "FATAL", 30, "FATAL after the fourth try")
    rc, out = exec_in(sandbox, "n1", "supervisorctl", "status", "oms_console")
    assert rc == 3 and "Exited too quickly" in out
    # a start by hand begins a new series; cleared while it backs off, the next try runs it
    assert exec_in(sandbox, "n1", "supervisorctl", "start", "oms_console")[0] == 7
    sandbox.fault("clear")
    sandbox.wait(lambda: state() == "RUNNING", 30, "RUNNING at the next try, without a start by hand")
    assert exec_in(sandbox, "n1", "supervisorctl", "status")[0] == 0


def test_after_an_upgrade_start_only_init_brings_the_console_and_init_runs_again_safely(sandbox):
    sandbox.fresh()
    for node in ("n1", "n2"):
        upgrade_mode_container(sandbox, node)
    sandbox.wait(lambda: "RUNNING" in exec_in(sandbox, "n1", "supervisorctl", "status", "oms_drc_cm")[1], 30, "cm")
    rc, out = exec_in(sandbox, "n1", "supervisorctl", "status")
    assert rc == 3 and "oms_console" in out and "STOPPED" in out  # not started by itself in upgrade mode
    eng = sandbox.engine("n1")
    logs = eng.containers.get("oms_ce").logs().decode()
    eng.close()
    assert "OMS service start successfully" not in logs
    rc, out = exec_in(sandbox, "n1", "bash", "/root/docker_init.sh")
    assert rc == 0 and out.rstrip().endswith("OMS service start successfully"), out  # the start line is init's
    assert exec_in(sandbox, "n1", "cat", "/root/init_flag.txt")[0] != 0  # no flag: no public source says it writes one
    rc, listing = exec_in(sandbox, "n1", "sh", "-c", "ls /home/admin/logs/docker_init.log.*")
    assert rc == 0 and listing.strip()
    # n1 serves; n2 (same cm_nodes, no init of its own) does not until its console is started by hand
    sandbox.wait(lambda: _healthy("127.0.0.11"), 30, "n1 healthy")
    assert not _healthy("127.0.0.12")
    exec_in(sandbox, "n2", "supervisorctl", "start", "oms_console")
    sandbox.wait(lambda: _healthy("127.0.0.12"), 30, "n2 healthy")
    # docker_init.sh run again for the same cm_nodes (the vendor does): it changes nothing and succeeds
    rm = sandbox.status()["metadb"]["rm"]
    before = sandbox.snapshot_small()
    rc, out = exec_in(sandbox, "n1", "bash", "/root/docker_init.sh")
    assert rc == 0 and "already at 4.2.9" in out, out
    assert sandbox.sql("SELECT version FROM oms_version", rm) == [("4.2.8-CE",), ("4.2.9-CE",)]
    assert without_volatile(sandbox.snapshot_small()) == without_volatile(before)


def test_after_an_upgrade_an_init_whose_console_dies_says_so_instead_of_the_start_line(sandbox):
    """facts.CHOICES init_console_failure: the metadata is migrated (oms_version), then its console
    dies at each start: docker_init.sh prints supervisorctl's answer and an ERROR last, exit 1."""
    sandbox.fresh()
    upgrade_mode_container(sandbox, "n1")
    sandbox.wait(lambda: "RUNNING" in exec_in(sandbox, "n1", "supervisorctl", "status", "oms_drc_cm")[1], 30, "cm")
    sandbox.cli("fault", "program-crash", "--node", "n1")
    rc, out = exec_in(sandbox, "n1", "bash", "/root/docker_init.sh")
    last = out.strip().splitlines()[-1]
    assert rc == 1 and "ERROR oms_console did not start: oms_console: ERROR (abnormal termination)" in last, out
    assert "OMS service start successfully" not in out
    rm = sandbox.status()["metadb"]["rm"]
    assert ("4.2.9-CE",) in sandbox.sql("SELECT version FROM oms_version", rm)
    assert "FATAL" in exec_in(sandbox, "n1", "supervisorctl", "status", "oms_console")[1]


def _healthy(ip: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{ip}:8089/oms/health", timeout=3) as r:
            return json.load(r)["data"]["healthy"] is True
    except urllib.error.HTTPError as e:  # 502 while oms_console is down
        e.close()
        return False
    except (OSError, ValueError, KeyError):
        return False


def test_the_console_publishes_no_server_or_connector_action_and_pages_with_a_null_total(sandbox):
    sandbox.fresh()
    for action in ("ListServers", "ListConnectors", "UpdateConnectorConfig", "NoSuchAction"):
        status, env = console(action)
        assert status == 200 and env["success"] is False and env["code"] == "PARAM_ERROR", (action, env)
    sandbox.fault("many-projects")  # 204 projects in all
    status, page1 = console("ListProjects", {"pageNumber": 1, "pageSize": 150})
    assert status == 200 and page1["totalCount"] is None and len(page1["data"]) == 150
    status, page2 = console("ListProjects", {"pageNumber": 2, "pageSize": 150})
    assert len(page2["data"]) == 54  # a client that trusts totalCount (null) stops at 150
    assert console("ListProjects", {"pageSize": 151})[1]["code"] == "PARAM_ERROR"
    comps = console("DescribeProjectComponents", {"id": "np_6a2d8c3e4f"})[1]["data"]["incrSyncComponents"]
    assert {c["name"].split(":")[2] for c in comps} == {"np_6a2d8c3e4f-incr-events-1", "np_6a2d8c3e4f-incr-events-2"}


def test_five_wrong_passwords_lock_the_console_account(sandbox):
    sandbox.fresh()
    for _ in range(5):
        assert console("ListProjects", password="wrong-password-1")[0] == 401
    status, env = console("ListProjects")  # the right password, too late
    assert status == 401 and "locked" in env["message"]


def test_the_cm_updates_only_a_stopped_connector(sandbox):
    sandbox.fresh()
    cmdb = sandbox.status()["metadb"]["cm"]
    name = sandbox.sql("SELECT name FROM connector_task WHERE status='RUNNING' ORDER BY name LIMIT 1", cmdb)[0][0]
    refused = cm("/connector/task/updateByName", form={"taskName": name, "source.dbType": "MYSQL"})
    assert refused["isSuccess"] is False and set(refused) == {
        "errCode",
        "errMsg",
        "errorDetail",
        "isSuccess",
        "result",
        "retryable",
    }
    assert cm("/connector/task/stopByName", {"taskName": name})["isSuccess"] is True
    assert cm("/connector/task/updateByName", form={"taskName": name, "source.dbType": "MYSQL"})["isSuccess"] is True
    assert cm("/connector/task/startByName", {"taskName": name})["isSuccess"] is True
    source = json.loads(sandbox.sql(f"SELECT source_config FROM connector_task WHERE name='{name}'", cmdb)[0][0])
    assert source["dbType"] == "MYSQL"


def test_installation_packages_load_with_the_tags_seen_in_practice(sandbox):
    sandbox.fresh()
    import subprocess

    pkg = next(p for v, p in sandbox.status()["packages"].items() if v.startswith("4.2.9"))
    out = subprocess.run(
        ["docker", "load", "-i", pkg],
        capture_output=True,
        text=True,
        env={"DOCKER_HOST": f"unix://{STATE}/nodes/n1/docker.sock", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert "Loaded image: oceanbase/oms:feature_4.2.9_ce" in out
