"""Hosts, through testinfra: run commands and move small files on a node or the backup host.

One choke point: ``run`` records every command once (redacted) with its exit code. Arguments
are quoted in one place (``run("ls -- %s", path)``), never glued into shell strings. Steps do
not write shell text: they call the verbs below (file facts, free space, an empty private
folder, an archive's manifest, ...).
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import testinfra

from ..audit import AUDIT
from ..errors import HostProblem
from ..redact import redact


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


def testinfra_spec(spec: str) -> str:
    """The testinfra host spec for an environment file's ``host``.

    ``ssh://`` is served by testinfra's paramiko backend (this project's choice): it gives SFTP,
    so files such as the MySQL option file reach the host without appearing on a command line.
    It reads ~/.ssh/config like ssh does.
    """
    if spec.startswith("ssh://"):
        return "paramiko://" + spec[len("ssh://") :]
    return spec


def known_hosts_files(config: Path) -> list[str]:
    """~/.ssh/known_hosts and every UserKnownHostsFile named in the ssh config (following Include)."""
    files = [str(Path.home() / ".ssh" / "known_hosts")]
    seen: set[Path] = set()

    def walk(path: Path) -> None:
        if path in seen or not path.exists():
            return
        seen.add(path)
        for line in path.read_text().splitlines():
            words = line.strip().split()
            if len(words) >= 2 and words[0].lower() == "include":
                for w in words[1:]:
                    walk(Path(os.path.expanduser(w)) if w.startswith(("/", "~")) else path.parent / w)
            elif len(words) >= 2 and words[0].lower() == "userknownhostsfile":
                files.extend(os.path.expanduser(w) for w in words[1:])

    walk(config)
    return files


def verified_client(backend: Any, config: Path) -> Any:
    """A paramiko client for testinfra's backend that verifies host keys.

    testinfra's paramiko backend accepts unknown host keys with a warning; a runbook for
    production must not. Known hosts come from ~/.ssh/known_hosts and the ssh config's
    UserKnownHostsFile; an unknown host is refused.
    """
    import paramiko

    client = paramiko.SSHClient()
    for known in known_hosts_files(config):
        if os.path.exists(known):
            client.load_host_keys(known)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    cfg: dict[str, Any] = {
        "hostname": backend.host.name,
        "port": int(backend.host.port) if backend.host.port else 22,
        "username": backend.host.user,
        "timeout": backend.timeout,
    }
    if config.exists():
        with open(config) as f:
            parsed = paramiko.SSHConfig()
            parsed.parse(f)
        backend._load_ssh_config(client, cfg, parsed, str(config.parent))
    client.connect(**cfg)
    return client


class Host:
    """A node or the backup host."""

    def __init__(self, spec: str, label: str, node: str | None = None) -> None:
        self.spec = spec
        self.label = label
        self.node = node

    @property
    def is_local(self) -> bool:
        return self.spec == "local://"

    @cached_property
    def _host(self) -> Any:
        kwargs: dict[str, Any] = {}
        cfg = Path.home() / ".ssh" / "config"
        if not self.is_local and cfg.exists():
            kwargs["ssh_config"] = str(cfg)
        host = testinfra.get_host(testinfra_spec(self.spec), **kwargs)
        if not self.is_local:
            host.backend.client = verified_client(host.backend, cfg)
        return host

    # -- the choke point ---------------------------------------------------------------------
    def run(self, command: str, *args: str, quiet: bool = False) -> Result:
        """Run a command; never raises for a non-zero exit (see ``check``)."""
        shown = command % tuple(shlex.quote(str(a)) for a in args) if args else command
        t0 = time.monotonic()
        try:
            r = self._host.run(command, *args)
        except Exception as e:  # connection refused, auth failure, host key...
            AUDIT.record("host", self.label, shown, f"unreachable: {e}", time.monotonic() - t0, node=self.node)
            raise HostProblem(
                f"host {self.label} ({self.spec}) is unreachable: {type(e).__name__}: {redact(e)}",
                "check that the host is up, that SSH answers and the key is accepted (ssh from this machine)",
            ) from e
        result = Result(int(r.rc), str(r.stdout), str(r.stderr))
        outcome = f"exit {result.rc}"
        if result.rc != 0 and not quiet:
            outcome += f": {redact(result.stderr.strip())[-300:]}"
        AUDIT.record("host", self.label, shown, outcome, time.monotonic() - t0, node=self.node)
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

    def make_private_dir(self, path: str) -> None:
        """mkdir -p with mode 0700 for what it creates."""
        self.check("umask 077; mkdir -p -- %s", path, what=f"create {path}")

    def make_empty_private_dir(self, path: str) -> None:
        """A new folder (0700) that must be empty: a folder already holding files is refused."""
        self.check(
            'umask 077; mkdir -p -- %s && test -z "$(ls -A -- %s)"', path, path, what=f"create the empty folder {path}"
        )

    def create_exclusive(self, path: str, text: str) -> bool:
        """Create ``path`` (0600) holding ``text`` (not a secret), only if it does not exist yet."""
        return self.run("set -o noclobber; umask 077; printf '%%s\\n' %s > %s", text, path, quiet=True).rc == 0

    def remove(self, path: str) -> None:
        self.run("rm -f -- %s", path)

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
        r = self.run("test -f %s && stat -c %%s %s && sha256sum -- %s", path, path, path, quiet=True)
        if r.rc != 0:
            return None
        lines = r.stdout.split("\n")
        return {"size": int(lines[0].strip()), "sha256": lines[1].split()[0]}

    def tail(self, path: str, nbytes: int = 256) -> str:
        return self.check("tail -c %s -- %s", str(nbytes), path, what="read the end of a file")

    def free_bytes(self, folder: str) -> int:
        out = self.check("df -P -B1 -- %s | tail -n 1", folder, what="disk space")
        return int(out.split()[3])

    def clock(self) -> tuple[float, int]:
        """The host's clock: (seconds since the epoch, its UTC offset in minutes)."""
        out = self.check("date -u +%s.%N; date +%z", what="read the clock").split()  # no arguments: no %-quoting
        try:
            offset = int(out[1][0] + "1") * (int(out[1][1:3]) * 60 + int(out[1][3:5]))
            return float(out[0]), offset
        except (IndexError, ValueError):
            raise HostProblem(f"{self.label}: `date` answered {out!r}, not a time and an offset") from None

    def head_line(self, path: str) -> str:
        """The first line of a file (at most 4 KiB of it)."""
        return self.check("head -c 4096 -- %s", path, what=f"read the start of {path}").split("\n", 1)[0]

    def archive_manifest(self, path: str) -> Result:
        """``manifest.json`` of a gzipped `docker save` archive. tar reads the whole archive (the
        manifest is written last), so gzip's CRC check covers all of it."""
        return self.run("tar -xzOf %s manifest.json", path, quiet=True)

    def put_secret_file(self, path: str, content: str) -> None:
        """Write ``content`` to ``path`` with mode 0600, never through a command line."""
        t0 = time.monotonic()
        data = content.encode("utf-8")
        try:
            if self.is_local:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            else:
                sftp = self._host.backend.client.open_sftp()
                try:
                    with sftp.open(path, "wb") as f:
                        f.chmod(0o600)
                        f.write(data)
                finally:
                    sftp.close()
        except Exception as e:
            AUDIT.record(
                "host",
                self.label,
                f"write {path} (0600, {len(data)} bytes)",
                f"failed: {e}",
                time.monotonic() - t0,
                node=self.node,
            )
            raise HostProblem(f"cannot write {path} on {self.label}: {redact(e)}") from e
        AUDIT.record(
            "host",
            self.label,
            f"write {path} (0600, {len(data)} bytes, content not shown)",
            "ok",
            time.monotonic() - t0,
            node=self.node,
        )
