"""Which projects forbid an upgrade (doc 000/001: real-time, forward switchover done)."""

from omsup.projects import forbidden_reason

REALTIME = [{"name": "FULL_TRANSFER", "status": "FINISHED"}, {"name": "INCR_TRANSFER", "status": "MONITORING"}]


def test_realtime_running_project_is_fine():
    assert forbidden_reason({"status": "RUNNING"}, REALTIME) is None


def test_incremental_not_realtime_is_forbidden():
    steps = [{"name": "INCR_TRANSFER", "status": "RUNNING"}]
    assert "not real-time" in forbidden_reason({"status": "RUNNING"}, steps)


def test_switchover_not_done_is_forbidden():
    steps = [*REALTIME, {"name": "TRANSFER_APP_SWITCH", "status": "INIT"}]
    assert "forward switchover is not done" in forbidden_reason({"status": "RUNNING"}, steps)


def test_running_without_incremental_step_is_forbidden():
    assert forbidden_reason({"status": "RUNNING"}, [{"name": "FULL_TRANSFER", "status": "RUNNING"}])


def test_finished_released_suspended_failed_are_not_held_to_the_rule():
    for status in ("FINISHED", "RELEASED", "SUSPEND", "FAILED", "DELETED"):
        assert forbidden_reason({"status": status}, [{"name": "INCR_TRANSFER", "status": "RUNNING"}]) is None
