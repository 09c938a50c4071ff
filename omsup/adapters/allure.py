"""Allure Report 3, the tool that renders a run folder's results into the single-file HTML report."""

from __future__ import annotations

import subprocess
from pathlib import Path


def render_single_file(
    binary: Path, results: Path, out: Path, name: str, group_by: str
) -> subprocess.CompletedProcess[str]:
    """`allure awesome RESULTS -o OUT --single-file --report-name NAME --group-by GROUP` (its exit code and words)."""
    return subprocess.run(
        [str(binary), "awesome", str(results), "-o", str(out), "--single-file", "--report-name", name,
         "--group-by", group_by],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
