"""CI's slice of the integration tests: the opt-in list names only tests that exist, and CI keeps a test of
every integration module (a representative slice, not a hole)."""

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import FULL_ONLY, full_only

ROOT = Path(__file__).resolve().parents[2]


def _collected(profile: str) -> list[str]:
    env = {**os.environ, "OMSUP_PROFILE": profile}
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/integration", "--co", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return [x for x in p.stdout.splitlines() if x.startswith("tests/integration/")]


def test_every_opt_in_entry_names_collected_tests_and_ci_keeps_every_module():
    full, ci = _collected("full"), _collected("ci")
    used = {full_only(t) for t in full} - {None}
    assert not set(FULL_ONLY) - used, f"FULL_ONLY names tests that do not exist: {sorted(set(FULL_ONLY) - used)}"
    assert set(ci) == {t for t in full if not full_only(t)}
    modules = {t.split("::")[0] for t in full}
    assert modules == {t.split("::")[0] for t in ci}, sorted(modules - {t.split("::")[0] for t in ci})
