"""The hot upgrade to 4.2.13 and its rollback (issue 30), on the sandbox, checked from outside.

What is looked at is the sandbox's own: the containers through each node's engine socket, the stand-in's files
in the container (/opt/standin/VERSION: which release's files run), its Store and Incr-Sync processes (their PID
files in the run mount, /proc in the container) and their checkpoints in the store mount, the MetaDB as root.
"""

from __future__ import annotations

import gzip
import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from .conftest import STATE
from .test_upgrade_429 import assert_passed

pytestmark = pytest.mark.integration

COMPONENTS = ("store", "incr_sync")


def healthy(ip: str) -> bool:
    with urllib.request.urlopen(f"http://{ip}:8089/oms/health", timeout=3) as r:
        return json.load(r)["data"]["healthy"] is True


def container(sandbox, node: str):
    return sandbox.engine(node).containers.get("oms_ce")


def in_container(sandbox, node: str, *cmd: str) -> str:
    rc, out = container(sandbox, node).exec_run(list(cmd))
    assert rc == 0, (cmd, out)
    return out.decode().strip()


def files_release(sandbox, node: str) -> str:
    """The release whose files the container runs (the stand-in's VERSION beside its programs)."""
    return in_container(sandbox, node, "cat", "/opt/standin/VERSION")


def identity(sandbox, node: str) -> tuple[str, str, str]:
    c = container(sandbox, node)
    return c.id, c.attrs["State"]["StartedAt"], c.status


def components(sandbox, node: str) -> dict[str, tuple[int, int]]:
    """Each sync component: (its PID, its checkpoint), the PID alive in the container."""
    data = STATE / "nodes" / node / "data" / "oms"
    out = {}
    for name in COMPONENTS:
        pid = int((data / "oms_run" / f"{name}.pid").read_text())
        assert f"{name}" in in_container(sandbox, node, "cat", f"/proc/{pid}/cmdline"), (node, name, pid)
        out[name] = (pid, int((data / "oms_store" / f"{name}.checkpoint").read_text()))
    return out


def oms_versions(sandbox) -> list[str]:
    rm = sandbox.status()["metadb"]["rm"]
    return sorted(r[0] for r in sandbox.sql("SELECT version FROM oms_version", rm))


def test_hot_upgrade_keeps_the_containers_and_the_tasks_and_its_rollback_brings_the_old_release_back(sandbox):
    sandbox.fresh("--version", "4.2.8-CE", "--nodes", "2")
    nodes = ("n1", "n2")
    ids = {n: identity(sandbox, n) for n in nodes}
    ha, versions_before = sandbox.ha(), oms_versions(sandbox)
    before = {n: components(sandbox, n) for n in nodes}
    assert all(files_release(sandbox, n) == "4.2.8" for n in nodes)

    p = sandbox.runbook("hot_upgrade_4213")
    assert_passed(p, 7)
    for n in nodes:
        assert identity(sandbox, n) == ids[n]  # the same container, never restarted, running
        assert files_release(sandbox, n) == "4.2.13"
        now = components(sandbox, n)
        for name in COMPONENTS:  # the same processes, their checkpoints moved on (never reset)
            assert now[name][0] == before[n][name][0] and now[name][1] > before[n][name][1], (n, name, now)
        assert in_container(sandbox, n, "sh", "-c", "ls -d /home/admin/logs/backup*")
    assert all(healthy(ip) for ip in ("127.0.0.11", "127.0.0.12"))
    assert sandbox.ha() == ha  # HA untouched
    assert "4.2.13-CE" in oms_versions(sandbox)
    summary = json.loads((sandbox.last_report("hot_upgrade_4213") / "summary.json").read_text())
    assert summary["versions"] == {"before": "4.2.8-CE", "target": "4.2.13-CE"}

    # the same runbook again: the deployment runs 4.2.13 (the ledger says so; the image still says 4.2.8)
    again = sandbox.runbook("hot_upgrade_4213")
    assert again.returncode == 10 and "already runs 4.2.13-CE" in again.output, again.output[-2000:]

    mid = {n: components(sandbox, n) for n in nodes}
    back = sandbox.runbook("hot_rollback_4213")
    assert_passed(back, 3)
    for n in nodes:
        assert identity(sandbox, n) == ids[n]
        assert files_release(sandbox, n) == "4.2.8"  # the old release's files again
        now = components(sandbox, n)
        for name in COMPONENTS:
            assert now[name][0] == mid[n][name][0] and now[name][1] > mid[n][name][1], (n, name, now)
    assert all(healthy(ip) for ip in ("127.0.0.11", "127.0.0.12"))
    assert oms_versions(sandbox) == versions_before  # as before the upgrade: a later docker_init.sh reads it
    assert sandbox.ha() == ha


def test_a_failing_hot_update_stops_with_the_rollback_which_brings_the_old_release_back(sandbox):
    """With behaviours the page leaves open chosen the other way: docker_init.sh starts only oms_console (the rollback
    starts what it left stopped), the scripts do not write oms_version, supervisorctl status always exits 0."""
    sandbox.fresh(
        "--version", "4.2.8-CE", "--nodes", "2",
        "--variant", "init-starts-console-only", "--variant", "oms-version-not-written", "--variant", "supervisor-3",
    )  # fmt: skip
    ids = {n: identity(sandbox, n) for n in ("n1", "n2")}
    sandbox.fault("hot-init-fail", node="n1")
    p = sandbox.runbook("hot_upgrade_4213")
    assert p.returncode == 1, p.output[-3000:]
    assert "docker_hot_update_init.sh exited 1" in p.output and "pytest runbooks/hot_rollback_4213 --env" in p.output
    assert files_release(sandbox, "n2") == "4.2.8" and healthy("127.0.0.12")  # the next node was not touched
    told = sandbox.next_steps()
    assert any("pytest runbooks/hot_rollback_4213" in line for line in told), told
    refused = sandbox.omsup(
        "abandon", "hot_upgrade_4213", "--reason", "test"
    )  # the files changed: not without the rollback
    assert refused.returncode == 10 and "hot_update" in refused.stderr, refused.stderr
    again = sandbox.runbook("hot_upgrade_4213")  # not resumed: the page does not say running it again is safe
    assert again.returncode != 0 and "hot_rollback_4213" in again.output, again.output[-2000:]
    sandbox.fault("clear")
    assert_passed(sandbox.runbook("hot_rollback_4213"), 3)
    assert files_release(sandbox, "n1") == "4.2.8" and healthy("127.0.0.11")
    assert {n: identity(sandbox, n) for n in ("n1", "n2")} == ids
    # once rolled back, a new hot upgrade starts anew and passes
    assert_passed(sandbox.runbook("hot_upgrade_4213"), 7)
    assert files_release(sandbox, "n1") == "4.2.13"


def test_hot_upgrade_refusals(sandbox):
    """Refused before anything in the deployment changes: scripts missing from the image; a task created during the
    upgrade (before the first stop); a source below 4.2.1."""
    sandbox.fresh("--version", "4.2.8-CE", "--nodes", "1")
    ident = identity(sandbox, "n1")
    # a package whose image lacks one of the page's scripts (the same tag, committed without it, saved)
    eng = sandbox.engine("n1")
    image = "oceanbase/oms-ce:feature_4.2.13_ce"
    package = Path(yaml.safe_load(Path(sandbox.env_file).read_text())["packages"]["4.2.13-CE"])
    eng.images.load(package.read_bytes())
    tool = eng.containers.create(image, ["bash", "-c", "rm /root/docker_copy_dumpfile_rollback.sh"])
    tool.start()
    tool.wait(timeout=30)
    repo, tag = image.rsplit(":", 1)
    tool.commit(repository=repo, tag=tag)
    tool.remove()
    lacking = sandbox.reports / "oms_4.2.13-lacking.tar.gz"
    with gzip.open(lacking, "wb") as out:
        for chunk in eng.images.get(image).save(named=True):
            out.write(chunk)
    eng.images.remove(image, force=True)
    env = sandbox.edited_env(lambda d: d["packages"].update({"4.2.13-CE": str(lacking)}))
    p = sandbox.runbook("hot_upgrade_4213", env_file=env)
    assert p.returncode == 10, p.output[-3000:]
    assert "lacks the hot upgrade's scripts docker_copy_dumpfile_rollback.sh" in p.output
    assert not [c for c in eng.containers.list(all=True) if c.name == "oms-config-tool"]  # the tool container went
    assert files_release(sandbox, "n1") == "4.2.8" and identity(sandbox, "n1") == ident
    eng.images.remove(image, force=True)  # the package loads the real one again

    # a task created after the preflight: the run stops before step 5 stops anything
    sandbox.omsup("abandon", "hot_upgrade_4213", "--reason", "test: the image lacked a script")
    assert_passed(sandbox.runbook("hot_upgrade_4213", "--until", "3"), 4)
    sandbox.cli("fault", "many-projects", "--count", "1")
    p = sandbox.runbook("hot_upgrade_4213")
    assert p.returncode != 0 and "a task was created since the preflight" in p.output, p.output[-3000:]
    assert files_release(sandbox, "n1") == "4.2.8" and healthy("127.0.0.11")
    states = in_container(sandbox, "n1", "supervisorctl", "status")
    assert states.count("RUNNING") == 6, states  # nothing was stopped

    # below 4.2.1
    sandbox.fresh("--version", "4.2.0-CE", "--nodes", "1")
    p = sandbox.runbook("hot_upgrade_4213", "--plan")
    assert p.returncode == 10 and "4.2.0-CE -> 4.2.13-CE is not documented" in p.output and "V4.2.1" in p.output, (
        p.output[-2000:]
    )
