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
