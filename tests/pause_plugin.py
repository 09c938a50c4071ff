"""Test-only pytest plugin: hold a runbook run at the start of a step (``-p tests.pause_plugin``).

It implements the runbook plugin's ``pytest_omsup_step_begin`` hook. With OMSUP_PAUSE_AT_STEP=<step key>
the run is held at the start of that step (its start already recorded) so that a test can
interrupt it or inject a fault exactly there. With OMSUP_PAUSE_UNTIL_FILE=F, F.held is written
once the run is held, and the run goes on as soon as F exists (or after OMSUP_PAUSE_SECONDS).
"""

from __future__ import annotations

import os
import time


def pytest_omsup_step_begin(step: str) -> None:
    if os.environ.get("OMSUP_PAUSE_AT_STEP") != step:
        return
    deadline = time.monotonic() + float(os.environ.get("OMSUP_PAUSE_SECONDS", "60"))
    release = os.environ.get("OMSUP_PAUSE_UNTIL_FILE")
    if release:
        with open(release + ".held", "w") as f:
            f.write(str(os.getpid()))
    while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(0.05)
