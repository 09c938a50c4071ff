"""The report's renderers work from the summary alone (plain data, no pytest, no Allure): junit.xml here."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from omsup.report import junit_xml


def summary(statuses: list[str], exit_code: int | None) -> dict:
    return {
        "runbook": "upgrade_429",
        "environment": "prod-eu",
        "exit_code": exit_code,
        "run_id": "20261207T010000Z",
        "control_machine": {"host": "ctl", "user": "root", "python": "3.11"},
        "times": {"run_started": "2026-12-07T01:00:00.000Z"},
        "failed_step": {"next": "fix the MetaDB, then resume"} if "failed" in statuses else None,
        "steps": [
            {
                "number": i,
                "title": f"Step <{i}> & more",
                "status": st,
                "seconds": 1.5 if st in ("passed", "failed") else None,
                "error": "MetaDB down" if st == "failed" else None,
                "category": "MetaDB problem" if st == "failed" else None,
            }
            for i, st in enumerate(statuses)
        ],
    }


def test_junit_names_every_step_and_its_outcome():
    root = ET.fromstring(junit_xml(summary(["passed", "verified", "failed", "skipped", "not run"], 1)))
    assert root.tag == "testsuite" and root.get("tests") == "5"
    assert root.get("failures") == "1" and root.get("skipped") == "2"
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props == {"omsup.exit_code": "1", "omsup.outcome": "failed", "omsup.run_id": "20261207T010000Z"}
    cases = root.findall("testcase")
    assert [c.get("name") for c in cases][0] == "0. Step <0> & more"  # escaped in the file, itself when read
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == "MetaDB problem: MetaDB down"
    assert "next: fix the MetaDB, then resume" in (failure.text or "")
    assert cases[3].find("skipped") is not None and cases[4].find("skipped") is not None
    assert cases[0].find("failure") is None and cases[1].find("skipped") is None


def test_junit_of_a_run_with_no_exit_code_yet():
    root = ET.fromstring(junit_xml(summary(["passed"], None)))
    assert {p.get("name"): p.get("value") for p in root.iter("property")}["omsup.exit_code"] == ""


def test_a_rehearsals_summary_reads_as_a_change_ticket_and_an_upgrade_says_whether_it_was_rehearsed():
    from omsup.report import rehearsal_line, rehearsal_ticket

    r = {
        "rehearsed": "upgrade_429",
        "and": "rollback_429",
        "identities": {"old_image_id": "sha256:abc", "metadb": {"version": "5.7.25-OceanBase"}},
        "dumps": {"rm_428": 1234},
        "nodes": ["n1"],
        "replica": {"address_mapping": {"ips": {"10.0.0.2": "10.213.0.11"}}},
        "upgrade": "complete",
        "rollback": "complete",
        "upgrade_seconds": 21.1,
        "rollback_seconds": 9.0,
        "outage_seconds": 8.2,
        "replica_removed": True,
        "observed": {"init": {"n1": [{"rc": 0, "flag": None}]}, "oms_version": {"names_the_target": True}},
        "host_short_of": ["2 cores (an OMS node asks 5)"],
    }
    md = "\n".join(rehearsal_ticket({"kind": "rehearsal", "rehearsal": r}))
    assert "rm_428 1234 bytes" in md and "sha256:abc" in md and "outage 8.2 s" in md
    assert "n1: docker_init.sh ran 1 time(s), exit 0, flag file none" in md and "lacks 2 cores" in md
    assert rehearsal_ticket({"kind": "upgrade", "rehearsal": r}) == []
    assert rehearsal_line({"kind": "upgrade", "rehearsal": {"rehearsed": False}}).startswith("Not rehearsed")
    line = rehearsal_line({"kind": "upgrade", "rehearsal": {"rehearsed": True, "at": "D", "outage_seconds": 8.2}})
    assert line is not None and line.startswith("Rehearsed on D") and "outage 8.2 s predicted" in line
