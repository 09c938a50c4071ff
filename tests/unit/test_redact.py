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
