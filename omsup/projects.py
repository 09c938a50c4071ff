"""Which migration and synchronization projects the documents forbid an upgrade with.

doc 000/001: "make sure that data is synchronized in real time between the source and
destination ... and that forward switchover of the projects is completed."
doc 004's HA table documents what happens to running, failed and suspended tasks across the
upgrade, so only running projects are held to the real-time rule here.
Step names and statuses: odc's OMS client (shared/oms-interfaces.md).
"""

from __future__ import annotations

from typing import Any

TERMINAL = {"FINISHED", "RELEASED", "RELEASING", "DELETED"}
RUNNING = {"RUNNING", "RUNNING_MODIFYING"}


def forbidden_reason(project: dict[str, Any], steps: list[dict[str, Any]]) -> str | None:
    """Why ``project`` forbids the upgrade, or None."""
    status = str(project.get("status", "")).upper()
    if status in TERMINAL or status not in RUNNING:
        return None
    by_name = {str(s.get("name")): str(s.get("status", "")).upper() for s in steps}
    incr = by_name.get("INCR_TRANSFER")
    if incr is None:
        return "it runs but has no incremental synchronization step, so it is not real-time"
    if incr != "MONITORING":
        return f"incremental synchronization is not real-time (INCR_TRANSFER is {incr}, expected MONITORING)"
    switch = by_name.get("TRANSFER_APP_SWITCH")
    if switch is not None and switch != "FINISHED":
        return f"forward switchover is not done (TRANSFER_APP_SWITCH is {switch}, expected FINISHED)"
    return None
