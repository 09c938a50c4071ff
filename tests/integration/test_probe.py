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
    assert results and all(r["result"] in ("holds", "observed", "manual check") for r in results.values()), results
    assert {r["key"] for r in results.values() if r["result"] == "manual check"} == {
        "ha_write_effect",
        "console_after_init",
        "init_console_failure",
        # the hot upgrade's open points: only a hot upgrade (or its rehearsal) observes them
        "hot_node_order",
        "hot_rerun",
        "hot_programs",
        "hot_components",
    }
    # ha.config as documented (without refetchStoreIntervalMin, perceiveStoreClientCheckpoint): observed, not broken
    ha = results["ha_config"]
    assert ha["result"] == "holds" and "refetchStoreIntervalMin" in str(ha["seen"]), ha
    observed = {k for k, r in results.items() if r["result"] == "observed"}
    assert {"start_line", "init_flag", "oms_version", "unknown_action", "cm_by_name", "init_once"} <= observed
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


def test_the_probe_observes_init_run_again_and_fails_on_nothing_it_leaves_open(sandbox):
    """docker_init.sh run a second time (the vendor does): the probe reports what it saw and passes."""
    sandbox.fresh()
    assert_passed(sandbox.runbook("upgrade_429"), 11)
    eng = sandbox.engine("n1")
    rc = eng.containers.get("oms_ce").exec_run(["bash", "/root/docker_init.sh"]).exit_code
    eng.close()
    assert rc == 0
    p, results = probe(sandbox)
    assert_passed(p, 1)
    assert results["init_once"]["result"] == "observed" and "2 run(s) logged" in str(results["init_once"]["seen"])
    assert results["oms_version"]["result"] == "observed"
