"""Redaction in one place: every secret value is replaced before anything is written or logged.

Secrets are registered when the environment file is loaded (the MetaDB password, the console
credentials, any value read from a secret reference). Everything that leaves the process
(logs, report attachments, ledgers, summaries, error messages) passes ``redact``.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shlex
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from .errors import OmsupError

MASK = "******"
_lock = threading.Lock()
_secrets: set[str] = set()
_split: dict[str, re.Pattern[str]] = {}  # a secret as tool output may wrap it: a line break between any two characters


def forms_of(value: str) -> set[str]:
    """Every form in which ``value`` can show up in output, exactly."""
    forms = {value}
    # JSON escaping (with and without \\uXXXX for non-ASCII; Go and JavaScript encoders also escape <, >, &
    # and ' as \\u003c ..., in lower or upper case), Python's repr, SQL quoting, shell quoting
    forms.add(value.replace("\\", "\\\\").replace('"', '\\"'))
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    for escaped in ("<>&", "<>&'"):
        for upper in (False, True):
            html_safe = json.dumps(value)[1:-1]
            for c in escaped:
                code = f"\\u{ord(c):04x}"
                html_safe = html_safe.replace(c, code.upper().replace("\\U", "\\u") if upper else code)
            forms.add(html_safe)
    forms.add(repr(value)[1:-1])
    forms.add(value.replace("'", "''"))
    forms.add(value.replace("\\", "\\\\").replace("'", "\\'"))
    forms.add(shlex.quote(value))
    forms.add(shlex.quote(value).strip("'"))
    # URL quoting: every character, '/' kept, '+' for spaces; upper- and lower-case hex
    for q in (
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote(value),
        urllib.parse.quote_plus(value),
        urllib.parse.quote_plus(value, safe="/"),
    ):
        forms.update({q, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), q)})
    # base64 (standard and URL-safe, with and without padding) of the value alone
    raw = value.encode("utf-8")
    for b in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms.update({b, b.rstrip("=")})
    # XML and HTML text and attributes (junit.xml)
    xml = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    forms.update({xml, xml.replace('"', "&quot;"), xml.replace('"', "&quot;").replace("'", "&#x27;")})
    return {f for f in forms if f}


def register(value: str | None) -> None:
    """Treat ``value`` (and its usual encodings) as a secret from now on."""
    if not value or len(value) < 3:
        return
    forms = forms_of(value)
    split = {
        f: re.compile(r"(?:\r?\n)?".join(re.escape(c) for c in f))
        for f in (value, base64.b64encode(value.encode("utf-8")).decode())
        if len(f) >= 6
    }
    with _lock:
        _secrets.update(forms)
        _split.update(split)


def register_basic_auth(user: str, password: str) -> None:
    register(password)
    register(base64.b64encode(f"{user}:{password}".encode()).decode())


def redact(text: Any) -> str:
    s = text if isinstance(text, str) else str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
        split = list(_split.values()) if "\n" in s else []
    for sec in secrets:
        if sec in s:
            s = s.replace(sec, MASK)
    for pattern in split:  # a secret wrapped across lines by the tool that printed it
        s = pattern.sub(MASK, s)
    return s


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: Any, keep_newlines: bool = False) -> str:
    """``text`` with every control character escaped (``\\x1b``, ``\\u202e``): what comes from outside (a
    ledger, a lock file, a console's message) never moves the cursor, recolours or rewrites a terminal."""
    s = text if isinstance(text, str) else str(text)

    def esc(m: re.Match[str]) -> str:
        c = m.group(0)
        if keep_newlines and c in "\n\t":
            return c
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    return _CONTROL.sub(esc, s)


def printable_obj(obj: Any) -> Any:
    """Every string inside a JSON-like structure made printable (keys too)."""
    if isinstance(obj, str):
        return printable(obj)
    if isinstance(obj, dict):
        return {printable(str(k)): printable_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [printable_obj(v) for v in obj]
    return obj


def excerpt(value: Any, limit: int = 200) -> str:
    """At most ``limit`` characters of ``value`` (bytes decoded), redacted before it is cut: a secret
    straddling the cut cannot survive in part."""
    try:
        s = value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)
    except RecursionError:
        s = f"<a {type(value).__name__} nested too deeply to show>"
    with _lock:
        longest = max((len(x) for x in _secrets), default=0)
    return redact(s[: limit + longest])[:limit]


def redact_obj(obj: Any) -> Any:
    """Redact every string inside a JSON-like structure."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(str(k)): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


SENSITIVE_KEY = re.compile(r"pass(word|wd)?|pwd|secret|token|credential|private|key$|apikey|access.?key", re.I)


MAX_CONFIG_DEPTH = 64  # a Connector's configuration is a few levels deep


def mask_config(obj: Any, depth: int = 0) -> Any:
    """A configuration (a Connector's, a request body) with the values of sensitive keys masked.

    Connector configurations may hold the credentials of source and sink databases: what is logged
    or reported of them shows their keys, never those values. Deeper than any configuration, a value
    is not shown at all.
    """
    if depth > MAX_CONFIG_DEPTH and isinstance(obj, dict | list):
        return f"<nested deeper than {MAX_CONFIG_DEPTH}: not shown>"
    if isinstance(obj, dict):
        return {
            k: (
                MASK
                if isinstance(k, str) and SENSITIVE_KEY.search(k) and not isinstance(v, dict | list)
                else mask_config(v, depth + 1)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [mask_config(v, depth + 1) for v in obj]
    return obj


def clear() -> None:
    """Forget every secret (tests only)."""
    with _lock:
        _secrets.clear()
        _split.clear()


class StepError(Exception):
    """An error that is not the project's own, as it leaves a step: its type and its redacted text."""

    category = "Runbook error"


def redacted_copy(exc: BaseException) -> BaseException:
    """The exception to let out of a step: its text redacted, the original kept nowhere a report reaches.

    The project's own errors keep their type (and category); a failed check stays an
    AssertionError; anything else becomes a StepError naming the original type. An interrupt
    (KeyboardInterrupt, SystemExit) carries no text and goes on as it is.
    """
    if not isinstance(exc, Exception):
        return exc
    if isinstance(exc, OmsupError):
        c = copy.copy(exc)
        c.message = printable(redact(exc.message), keep_newlines=True)
        c.hint = printable(redact(exc.hint), keep_newlines=True) if exc.hint else None
        c.args = (c.message + (f"\n  next: {c.hint}" if c.hint else ""),)
        return c
    if isinstance(exc, AssertionError):
        return AssertionError(printable(redact(str(exc)), keep_newlines=True))
    return StepError(f"{type(exc).__name__}: {printable(redact(str(exc)), keep_newlines=True)}")


def sweep(folder: Path) -> None:
    """Redact every text file under ``folder`` in place: the last pass over a run folder, whatever
    wrote into it (allure-results, junit.xml, ...)."""
    for p in folder.rglob("*"):
        if not p.is_file() or p.is_symlink():
            continue
        data = p.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        clean = redact(text)
        if clean != text:
            p.write_text(clean, encoding="utf-8")
