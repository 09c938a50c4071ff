"""ssh:// and tcp:// addresses, parsed once (the environment file's check and the SSH adapter use this).

``ssh://[user@]host[:port]`` as OpenSSH's own URI form has it (ssh(1): "ssh://[user@]hostname[:port]"), with an
IPv6 address in brackets (``ssh://admin@[fd00::11]:2222``) and a port 1-65535; ``tcp://host:port`` for a Docker
engine likewise. A host is an IP address or a DNS name (letters, digits, dots, hyphens): nothing an ssh or a
shell would read as an option or a pattern.
"""

from __future__ import annotations

import ipaddress
import re

USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})")
URL = re.compile(r"(?P<scheme>ssh|tcp)://(?:(?P<user>[^@/]*)@)?(?P<host>\[[^\]/]*\]|[^:/\[\]]*)(?::(?P<port>[^/]*))?")


class SpecError(ValueError):
    """What is wrong with an address, said for a person."""


def parse_host(text: str) -> str:
    """A host as written after ``@``: ``[IPv6]``, an IPv4 address or a DNS name; returned without brackets."""
    if text.startswith("["):
        inner = text[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise SpecError(f"{text!r} is not an IPv6 address in brackets") from None
        return inner
    if ":" in text:
        raise SpecError(f"{text!r}: an IPv6 address is written in brackets ([{text}])")
    if not HOSTNAME.fullmatch(text) or ".." in text or text.endswith("-"):
        raise SpecError(f"{text!r} is not a host name or an IP address")
    return text


def parse_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SpecError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def parse_url(spec: str, scheme: str = "ssh") -> tuple[str | None, str, int | None]:
    """(user, host, port) of ``ssh://[user@]host[:port]`` (``scheme`` "tcp": ``tcp://host:port``, no user, a
    port required). Raises SpecError saying what is wrong."""
    m = URL.fullmatch(spec) if isinstance(spec, str) else None
    if m is None or m.group("scheme") != scheme:
        form = "ssh://[user@]host[:port]" if scheme == "ssh" else "tcp://host:port"
        raise SpecError(f"{spec!r} is not of the form {form}")
    user, host, port = m.group("user"), m.group("host"), m.group("port")
    if not host.startswith("[") and port is not None and ":" in port:  # fd00::11 read as host fd00, port :11
        bare = spec.partition("://")[2].rpartition("@")[2]
        raise SpecError(f"{bare!r}: an IPv6 address is written in brackets ([{bare}])")
    if user is not None and (scheme != "ssh" or not USER.fullmatch(user)):
        raise SpecError(f"user {user!r} is not a user name (letters, digits, '_', '.', '-'; at most 32)")
    if scheme == "tcp" and port is None:
        raise SpecError(f"{spec!r} names no port (tcp://host:port)")
    return user, parse_host(host), parse_port(port) if port is not None else None


def is_url(spec: object, scheme: str = "ssh") -> bool:
    try:
        parse_url(spec, scheme)  # type: ignore[arg-type]
        return True
    except SpecError:
        return False
