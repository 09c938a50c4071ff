"""Hooks the runbook plugin calls, for other plugins to implement."""

from __future__ import annotations

import pytest


@pytest.hookspec
def pytest_omsup_step_begin(step: str) -> None:
    """A runbook step begins: its start is recorded, nothing of it has run yet.

    An extension point; the project's integration tests hold a run here to interrupt it or to
    inject a fault at exactly that step (tests/pause_plugin.py).
    """
