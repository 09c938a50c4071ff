"""Redaction: one place, every form a secret takes in output."""

import base64

from omsup import redact


def setup_function():
    redact.clear()


def test_registered_secret_is_masked_everywhere():
    redact.register("p'a\"ss $x#;\\y")
    out = redact.redact("mysql -pp'a\"ss $x#;\\y and again p'a\"ss $x#;\\y")
    assert "p'a" not in out and out.count(redact.MASK) == 2


def test_json_and_sql_escaped_forms_are_masked():
    secret = "a\"b\\c'd"
    redact.register(secret)
    assert redact.MASK in redact.redact('{"password": "a\\"b\\\\c\'d"}')
    assert redact.MASK in redact.redact("IDENTIFIED BY 'a\"b\\c''d'")


def test_basic_auth_header_is_masked():
    redact.register_basic_auth("admin", "Console-Secret")
    token = base64.b64encode(b"admin:Console-Secret").decode()
    assert token not in redact.redact(f"Authorization: Basic {token}")


def test_nested_objects():
    redact.register("topsecret")
    assert redact.redact_obj({"a": ["x topsecret", {"topsecret": 1}]}) == {"a": [f"x {redact.MASK}", {redact.MASK: 1}]}


def test_short_values_are_not_registered():
    redact.register("ab")
    assert redact.redact("ab") == "ab"


def test_non_ascii_secret_is_masked_in_every_encoding_it_takes_in_output():
    import json
    import urllib.parse

    secret = "Sx'q\"d $h#s;b\\k-äß€密"
    redact.register(secret)
    for shown in (
        secret,
        json.dumps(secret),
        json.dumps(secret, ensure_ascii=False),
        repr(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    ):
        out = redact.redact(f"before {shown} after")
        assert redact.MASK in out and "äß" not in out and "\\u00e4" not in out and "%C3%A4" not in out, shown


def test_an_excerpt_is_redacted_before_it_is_cut():
    secret = "Straddling-Secret-42"
    redact.register(secret)
    text = "x" * 190 + secret + "y" * 50  # the cut at 200 falls inside the secret
    out = redact.excerpt(text)
    assert len(out) <= 200 and "Straddling" not in out and "Stra" not in out[190:]
    assert redact.excerpt(text.encode()) == out  # bytes are decoded first, the same way


def test_a_configuration_nested_too_deeply_is_not_shown():
    deep: object = {"password": "p"}
    for _ in range(5000):
        deep = {"a": deep}
    masked = redact.mask_config(deep)
    assert "nested deeper than" in str(redact.excerpt(masked, 100_000))


def test_the_report_is_stripped_of_outside_requests():
    from omsup.report import offline

    html = (
        '<html><head><meta charset="utf-8"><script src="data:text/javascript;base64,eA=="></script>'
        '<script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>\n<script>\n'
        "window.dataLayer = window.dataLayer || [];\nfunction gtag(){dataLayer.push(arguments);}\n"
        "gtag('config', 'G-X');</script><script>window.allureReportData = {};</script></head><body></body></html>"
    )
    out = offline(html)
    assert "googletagmanager" not in out and "gtag" not in out and "dataLayer" not in out
    assert 'src="data:text/javascript;base64,eA=="' in out and "window.allureReportData" in out
    assert out.index("Content-Security-Policy") < out.index("<script") and "default-src 'none'" in out


def test_every_encoding_the_review_found_is_masked():
    """base64 of the secret alone, URL quoting that keeps '/' and writes lower-case hex, shell quoting,
    JSON \\u escapes of <, > and &, and the secret wrapped across a line break by a tool."""
    import json
    import re
    import shlex
    import urllib.parse

    secret = "Vq/3<kz>&'9 Lm_xR2"
    redact.register(secret)
    lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(secret))
    go_json = json.dumps(secret).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    shown = {
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64 url-safe, no padding": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        "url, '/' kept": urllib.parse.quote(secret),
        "url, lower-case hex": lower_hex,
        "shell": shlex.quote(secret),
        "json \\u escapes": go_json,
        "split by a line break": secret[:7] + "\n" + secret[7:],
        "split by CRLF": secret[:3] + "\r\n" + secret[3:],
    }
    for how, text in shown.items():
        out = redact.redact(f"<<{text}>>")
        assert redact.MASK in out and "Lm_xR2" not in out and "kz" not in out, (how, out)


def test_printable_escapes_what_would_drive_a_terminal():
    assert redact.printable("ok\x1b[2J\x07\u202eevil") == "ok\\x1b[2J\\x07\\u202eevil"
    assert redact.printable("two\nlines\tand", keep_newlines=True) == "two\nlines\tand"
