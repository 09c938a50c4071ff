"""HTTP for the console and the CM: one way to send a request, credentials never leave their origin.

urllib follows redirects by default, to any host and from https to http, carrying the request's
headers along, Basic credentials included; and the other host's answer is read as the console's.
Here a redirect is followed only for a GET within the same origin (scheme, host and port), at most
a few times; any other is refused, naming where it pointed (a POST redirected would lose its body:
urllib turns it into a GET). The answer is read up to a size limit.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MAX_REDIRECTS = 3


class NoAnswer(Exception):
    """The request got no HTTP answer (refused, timed out, TLS failed): the text says why."""


class CrossOrigin(Exception):
    """A redirect to another scheme, host or port (or of a POST): refused, never followed."""

    def __init__(self, url: str, location: str, code: int) -> None:
        self.url, self.location, self.code = url, location, code
        super().__init__(f"HTTP {code} redirect from {url} to {location}")


def origin(url: str) -> tuple[str, str, int | None]:
    u = urllib.parse.urlsplit(url)
    port = u.port or {"http": 80, "https": 443}.get(u.scheme)
    return u.scheme, (u.hostname or "").lower(), port


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        target = urllib.parse.urljoin(req.full_url, newurl)
        if origin(target) != origin(req.full_url) or req.get_method() != "GET":
            raise CrossOrigin(req.full_url, target, code)
        return super().redirect_request(req, fp, code, msg, headers, target)


def send(
    req: urllib.request.Request, timeout: float, limit: int, context: ssl.SSLContext | None = None
) -> tuple[int, bytes]:
    """(status, body up to ``limit`` bytes) of ``req``; an HTTP error status is an answer too.

    Raises:
        NoAnswer: nothing answered (with why).
        CrossOrigin: a redirect left the request's origin.
    """
    handlers: list[Any] = [_SameOrigin()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as r:
            return int(r.status), bytes(r.read(limit))
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read(limit))
    except CrossOrigin:
        raise
    except (OSError, ValueError, http.client.HTTPException) as e:
        raise NoAnswer(f"{type(e).__name__}: {e}") from None
