"""Hosts, through testinfra: run commands and move small files on a node or the backup host.

Remote hosts are reached through OpenSSH (omsup/adapters/ssh.py: resolved with `ssh -G`,
BatchMode, host keys verified on every connection); testinfra's ssh backend runs the commands.

One choke point: ``run`` records every command once (redacted) with its exit code. Arguments
are quoted in one place (``run("ls -- %s", path)``), never glued into shell strings. Steps do
not write shell text: they call the verbs below (file facts, free space, an empty private
folder, an archive's manifest, ...).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import testinfra

from .. import audit
from ..errors import HostProblem
from ..redact import excerpt, redact
from . import ssh
from .lazy import cached


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


# -- what the commands answer: total parsers (the project's error for anything unexpected) ---------
SHA256 = re.compile(r"^[0-9a-f]{64}$")
DF_LINE = re.compile(r"^\S.*?\s+(\d+)\s+(\d+)\s+(\d+)\s+(?:\d+%|-)\s+\S.*$")
CLOCK = re.compile(r"^\s*(\d{1,12})\.(\d{1,9})\s+([+-])(\d\d)(\d\d)\s*$")
# SHA-256 of stdin as a line "HEX ...": openssl where the host has it (it uses the CPU's SHA instructions:
# 0.25 s for 400 MB on the bench machine, against 0.73 s for coreutils' sha256sum), else sha256sum.
SHA256_STDIN = "{ if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi; }"
# stat -c '%s %.9Y %i %.9Z': size, modification time, inode and status-change time. An edit in place whose
# mtime was put back (touch -d) keeps the first three; the ctime moves with any change and cannot be set back.
FILE_IDENTITY = re.compile(r"^\d{1,20} \d{1,12}(\.\d{1,9})? \d{1,20} \d{1,12}(\.\d{1,9})?$")


def parse_file_facts(text: str, what: str) -> dict[str, Any]:
    """`stat -c %s FILE && SHA256_STDIN < FILE`: {"size", "sha256"}."""
    lines = str(text).split("\n")
    size = lines[0].strip() if lines else ""
    digest = lines[1].split()[0] if len(lines) > 1 and lines[1].split() else ""
    if not size.isascii() or not size.isdigit() or not SHA256.fullmatch(digest):
        raise HostProblem(f"{what}: stat and the SHA-256 tool answered {excerpt(text)!r}, not a size and a SHA-256")
    return {"size": int(size), "sha256": digest}


def parse_df(text: str, what: str) -> int:
    """The available bytes of `df -P -B1 -- FOLDER | tail -n 1` (the fourth column)."""
    m = DF_LINE.match(str(text).strip())
    if not m:
        raise HostProblem(f"{what}: df answered {excerpt(text)!r}, not a line of df -P")
    return int(m.group(3))


def parse_clock(text: str, label: str) -> tuple[float, int]:
    """`date -u +%s.%N; date +%z`: (seconds since the epoch, the UTC offset in minutes)."""
    m = CLOCK.match(str(text))
    if not m or int(m.group(4)) > 23 or int(m.group(5)) > 59:
        raise HostProblem(f"{label}: `date` answered {excerpt(text)!r}, not a time and an offset")
    sign = 1 if m.group(3) == "+" else -1
    return float(f"{m.group(1)}.{m.group(2)}"), sign * (int(m.group(4)) * 60 + int(m.group(5)))


def transport_failure(e: BaseException) -> str:
    """What went wrong reaching a host: ssh's own words (testinfra raises its CommandResult for exit 255)."""
    result = e.args[0] if isinstance(e, RuntimeError) and e.args else None
    stderr = getattr(result, "stderr_bytes", None)
    if isinstance(stderr, bytes):
        lines = [x for x in stderr.decode("utf-8", "replace").strip().splitlines() if x.strip()]
        return f"ssh exited {getattr(result, 'rc', '?')}: " + (" / ".join(lines[-3:]) or "no message")
    return f"{type(e).__name__}: {e}"


class Host:
    """A node or the backup host: local://, or ssh://[user@]host[:port] through OpenSSH (see ssh.py)."""

    def __init__(self, spec: str, label: str, node: str | None = None, sudo: bool = False) -> None:
        self.spec = spec
        self.label = label
        self.node = node
        self.sudo = sudo  # `sudo -n` for every command, as the documents' `sudo docker ...`

    @property
    def is_local(self) -> bool:
        return self.spec == "local://"

    @cached
    def target(self) -> ssh.SshTarget:
        return ssh.resolve(self.spec)

    @cached
    def _host(self) -> Any:
        if self.is_local:
            return testinfra.get_host("local://")
        # testinfra's ssh backend runs the system's ssh with these options (they override the config's)
        return testinfra.get_host(f"ssh://{self.target.alias}", ssh_extra_args=shlex.join(ssh.options(self.target)))

    def _sudo(self, shown: str) -> str:
        return f"sudo -n /bin/sh -c {shlex.quote(shown)}" if self.sudo else shown

    # -- the choke point ---------------------------------------------------------------------
    def run(self, command: str, *args: str, quiet: bool = False, said: Callable[[str], str] | None = None) -> Result:
        """Run a command; never raises for a non-zero exit (see ``check``). A failure's record ends with the end of
        its error output, or with what ``said`` makes of it (a client that echoes the data it was fed)."""
        # what runs, as it runs (with sudo where the node needs it): already quoted, no %-formatting left
        shown = self._sudo(command % tuple(shlex.quote(str(a)) for a in args) if args else command)
        with audit.call("host", self.label, shown, self.node) as rec:
            try:
                r = self._host.run(shown)
            except Exception as e:  # noqa: BLE001 - connection refused, auth failure, host key: said below
                why = transport_failure(e)
                hops = "" if self.is_local or not self.target.hops else ssh.hop_errors()
                if hops:  # the jump host's own words: its ssh ran behind the master, without a terminal
                    why += f"; jump host: {hops}"
                rec.failure = f"unreachable: {why}"
                raise HostProblem(
                    f"host {self.label} ({self.spec}) is unreachable: {redact(why)}",
                    "check that the host is up, that SSH answers and the key is accepted: "
                    f"ssh -o BatchMode=yes {self.target.alias if not self.is_local else ''} true (from this machine)",
                ) from None
            # the bytes, decoded leniently: a file or a tool may answer anything (a lock file of garbage)
            result = Result(
                int(r.rc), r.stdout_bytes.decode("utf-8", "replace"), r.stderr_bytes.decode("utf-8", "replace")
            )
            rec.outcome = f"exit {result.rc}"
            if result.rc != 0 and not quiet:
                rec.outcome += f": {said(result.stderr) if said else redact(result.stderr.strip())[-300:]}"
        return result

    def stream_to_file(self, dest: str, command: str, *args: str) -> Result:
        """Run a command through the same transport as ``run`` with its standard output written, as bytes, into
        ``dest`` on this machine (never over a file: O_EXCL), for output too large to hold (``docker save``). Its
        exit code and error output; ``dest`` is left as it was written, whatever the exit code."""
        shown = self._sudo(command % tuple(shlex.quote(str(a)) for a in args) if args else command)
        argv = ["/bin/sh", "-c", shown] if self.is_local else ssh.command(self.target, shown)
        with audit.call("host", self.label, f"{shown} > {dest} (on this machine)", self.node) as rec:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, check=False)
            result = Result(p.returncode, "", p.stderr.decode("utf-8", "replace"))
            rec.outcome = f"exit {result.rc}, {os.path.getsize(dest)} bytes"
            if result.rc != 0:
                rec.outcome += f": {redact(result.stderr.strip())[-300:]}"
        return result

    def check(self, command: str, *args: str, expect: tuple[int, ...] = (0,), what: str = "") -> str:
        """Run a command and require an expected exit code; return its stdout."""
        __tracebackhide__ = True
        result = self.run(command, *args)
        if result.rc not in expect:
            shown = command % tuple(shlex.quote(str(a)) for a in args) if args else command
            raise HostProblem(
                f"{what or 'command'} failed on {self.label}: `{redact(shown)}` exited {result.rc} "
                f"(expected {', '.join(map(str, expect))})\n  stderr: {redact(result.stderr.strip())[-1500:]}"
                f"\n  stdout: {redact(result.stdout.strip())[-500:]}",
            )
        return result.stdout

    # -- verbs -------------------------------------------------------------------------------
    def ping(self) -> None:
        """The host answers (over SSH for a remote host)."""
        self.check("true", what="reach the host")

    def readable(self, path: str) -> bool:
        return self.run("test -r %s", path).rc == 0

    def is_dir(self, path: str) -> bool:
        return self.run("test -d %s", path).rc == 0

    def writable_dir(self, path: str) -> bool:
        return self.run("test -d %s -a -w %s", path, path).rc == 0

    def read_text(self, path: str, what: str = "") -> str:
        return self.check("cat -- %s", path, what=what or f"read {path}")

    def read_text_if_present(self, path: str) -> str | None:
        r = self.run("cat -- %s", path, quiet=True)
        return r.stdout if r.rc == 0 else None

    def read_small_file(self, path: str, limit: int) -> str | None:
        """A regular file's first ``limit`` bytes, or None when nothing is there. A path that is a symlink,
        a FIFO, a device or a folder is refused (HostProblem): never read, never waited on."""
        r = self.run(
            "if test -L %s || { test -e %s && ! test -f %s; }; then exit 3; fi; test -e %s || exit 4; head -c %s -- %s",
            path,
            path,
            path,
            path,
            str(limit),
            path,
            quiet=True,
        )
        if r.rc == 4:
            return None
        if r.rc == 3:
            raise HostProblem(
                f"{path} on {self.label} is not a regular file (a symlink, FIFO, device or folder)",
                "look at what put it there; move it aside deliberately",
            )
        if r.rc != 0:
            raise HostProblem(f"cannot read {path} on {self.label}: exit {r.rc}: {redact(r.stderr.strip())[-300:]}")
        return r.stdout

    def make_private_dir(self, path: str) -> None:
        """mkdir -p with mode 0700 for what it creates."""
        self.check("umask 077; mkdir -p -- %s", path, what=f"create {path}")

    def make_empty_private_dir(self, path: str) -> None:
        """A new folder (0700) that must be empty: a folder already holding files is refused."""
        self.check(
            'umask 077; mkdir -p -- %s && test -z "$(ls -A -- %s)"', path, path, what=f"create the empty folder {path}"
        )

    def create_exclusive(self, path: str, text: str) -> bool:
        """Create ``path`` (0600) holding ``text`` (not a secret), only if nothing is there yet. A path that
        is not a regular file (a symlink to /dev/null, a FIFO) is refused (HostProblem): the shell's
        noclobber would write through it and report success to every caller."""
        r = self.run(
            "if test -L %s || { test -e %s && ! test -f %s; }; then exit 3; fi; "
            "set -o noclobber; umask 077; printf '%%s\\n' %s > %s",
            path,
            path,
            path,
            text,
            path,
            quiet=True,
        )
        if r.rc == 3:
            raise HostProblem(
                f"{path} on {self.label} is not a regular file (a symlink, FIFO, device or folder)",
                "look at what put it there; move it aside deliberately",
            )
        return r.rc == 0

    def remove(self, path: str) -> None:
        self.run("rm -f -- %s", path)

    def remove_empty_dir(self, path: str) -> None:
        """rmdir: a folder that holds anything stays."""
        self.run("rmdir -- %s", path, quiet=True)

    def rename_no_clobber(self, src: str, dest: str, what: str) -> None:
        """``src`` becomes ``dest``; an existing ``dest`` is never replaced."""
        self.check("test ! -e %s && mv -n -- %s %s", dest, src, dest, what=what)

    def file_size(self, path: str) -> int | None:
        r = self.run("stat -c %%s -- %s", path, quiet=True)
        try:
            return int(r.stdout.strip()) if r.rc == 0 else None
        except ValueError:
            return None

    def file_facts(self, path: str) -> dict[str, Any] | None:
        """Size and SHA-256 of a file, computed on the host (streamed there), or None if absent."""
        r = self.run(f"test -f %s && stat -c %%s %s && {SHA256_STDIN} < %s", path, path, path, quiet=True)
        if r.rc != 0:
            return None
        return parse_file_facts(r.stdout, f"{self.label}: {path}")

    def file_identity(self, path: str) -> str | None:
        """Size, modification time (ns), inode and status-change time (ns) of a file as one string, or None if
        absent. Equal strings mean the file was neither rewritten, edited in place nor replaced in between."""
        r = self.run("stat -c '%%s %%.9Y %%i %%.9Z' -- %s", path, quiet=True)
        out = r.stdout.strip()
        return out if r.rc == 0 and FILE_IDENTITY.fullmatch(out) else None

    def tail(self, path: str, nbytes: int = 256) -> str:
        return self.check("tail -c %s -- %s", str(nbytes), path, what="read the end of a file")

    def free_bytes(self, folder: str) -> int:
        out = self.check("df -P -B1 -- %s | tail -n 1", folder, what="disk space")
        return parse_df(out, f"{self.label}: {folder}")

    def clock(self) -> tuple[float, int]:
        """The host's clock: (seconds since the epoch, its UTC offset in minutes)."""
        out = self.check("date -u +%s.%N; date +%z", what="read the clock")  # no arguments: no %-quoting
        return parse_clock(out, self.label)

    def head_line(self, path: str) -> str:
        """The first line of a file (at most 4 KiB of it)."""
        return self.check("head -c 4096 -- %s", path, what=f"read the start of {path}").split("\n", 1)[0]

    def archive_manifest(self, path: str) -> Result:
        """``manifest.json`` of a gzipped `docker save` archive. tar reads the whole archive (the
        manifest is written last), so gzip's CRC check covers all of it."""
        return self.run("tar -xzOf %s manifest.json", path, quiet=True)

    def put_secret_file(self, path: str, content: str) -> None:
        """Write ``content`` to ``path`` with mode 0600, through stdin: never on a command line."""
        data = content.encode("utf-8")
        with audit.call("host", self.label, f"write {path} (0600, {len(data)} bytes, content not shown)", self.node):
            try:
                if self.is_local and not self.sudo:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                else:  # the same OpenSSH options as every command (ssh.command), the content on stdin
                    remote = self._sudo(f"umask 077 && cat > {shlex.quote(path)} && chmod 600 {shlex.quote(path)}")
                    argv = ["/bin/sh", "-c", remote] if self.is_local else ssh.command(self.target, remote)
                    p = subprocess.run(argv, input=data, capture_output=True, timeout=60)
                    if p.returncode != 0:
                        raise OSError(f"exit {p.returncode}: {p.stderr.decode('utf-8', 'replace').strip()[-300:]}")
            except (OSError, subprocess.SubprocessError) as e:
                raise HostProblem(f"cannot write {path} on {self.label}: {redact(e)}") from None
