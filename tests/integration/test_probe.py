"""The probe: every assumption checked by reading only; it fails naming the assumption that is broken."""

from __future__ import annotations

import json

import pytest

from .conftest import STATE
from .test_metadb import shadow, unchanged
from .test_upgrade_429 import assert_passed

pytestmark = pytest.mark.integration


def probe(sandbox, *args, **kw):
    p = sandbox.runbook("probe", *args, **kw)
    results = {}
    folder = sandbox.last_report("probe")
    for f in (folder / "allure-results").glob("*-attachment.json"):
        data = json.loads(f.read_text())
        if isinstance(data, list) and data and isinstance(data[0], dict) and "assumption" in data[0]:
            results = {r["key"]: r for r in data}
    return p, results


def test_the_probe_passes_on_a_sound_deployment_and_changes_nothing(sandbox):
    sandbox.fresh()
    same = unchanged(sandbox)
    p, results = probe(sandbox)
    assert_passed(p, 1)
    assert results and all(r["result"] in ("holds", "manual check") for r in results.values()), results
    assert {r["key"] for r in results.values() if r["result"] == "manual check"} == {
        "ha_write_effect",
        "init_rerun",
        "console_after_init",
        "init_console_failure",
    }
    same()
    assert not (STATE / "ledgers" / "probe").exists()  # no ledger
    assert not (STATE / "backups" / "sandbox" / ".omsup.lock").exists()  # no lock


def test_the_probe_names_a_wrong_node_ip(sandbox):
    sandbox.fresh()
    wrong = sandbox.edited_env(lambda d: d["regions"][0]["nodes"][1].update(ip="127.0.0.99"))
    p, results = probe(sandbox, env_file=wrong)
    assert p.returncode == 1, p.output[-2000:]
    assert results["host_ip"]["result"] == "BROKEN" and "127.0.0.99" in results["host_ip"]["why"]
    assert "host_ip:" in p.output and "would break" in p.output


def test_the_probe_names_a_missing_client_on_the_backup_host(sandbox, tmp_path):
    sandbox.fresh()
    path = shadow(tmp_path, "mysqldump", "exit 127\n")
    p, results = probe(sandbox, path=path)
    assert p.returncode == 1
    assert results["clients"]["result"] == "BROKEN" and "mysqldump" in results["clients"]["why"]
    assert all(r["result"] != "BROKEN" for k, r in results.items() if k != "clients")


def test_the_probe_names_a_second_docker_init(sandbox):
    sandbox.fresh()
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    p, results = probe(sandbox)
    assert_passed(p, 1)
    eng = sandbox.engine("n1")
    rc = eng.containers.get("oms_ce").exec_run(["bash", "/root/docker_init.sh"]).exit_code
    eng.close()
    assert rc != 0  # run again on migrated metadata: it fails, and leaves its log
    p, results = probe(sandbox)
    assert p.returncode == 1
    assert results["init_once"]["result"] == "BROKEN" and "ran 2 times" in results["init_once"]["why"]
