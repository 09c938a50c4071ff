"""A secret's ``{command: [argv...]}`` source, run on this machine (Vault, SOPS, pass, a cloud CLI).

No shell, no terminal (stdin is /dev/null: a program that would prompt fails at once instead of waiting), a
timeout. Not recorded in the audit: the environment file is read before a run's record exists, and what such a
program prints is the secret itself.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    rc: int | None  # None: it did not run (``problem`` says why) or did not end in time (``timed_out``)
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    problem: str = ""  # "not found", "not executable"


def run(argv: list[str], timeout: float) -> Answer:
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        return Answer(None, b"", b"", problem="not found")
    except PermissionError:
        return Answer(None, b"", b"", problem="not executable")
    except subprocess.TimeoutExpired:
        return Answer(None, b"", b"", timed_out=True)
    return Answer(p.returncode, p.stdout, p.stderr)
