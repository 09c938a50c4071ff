"""Every parser of outside text gives the project's error, or a value, for any input: never a raw exception.

One table, one test per parser. What a parser reads comes from outside the process (a host's command
output, a file on a host, the console's or the CM's answer, the engine's inspect, the MetaDB, the
environment file, a ledger or lock file on disk); inputs are generated three ways: arbitrary text or
bytes, arbitrary JSON values, and near misses of the real shape (the right keys with wrong values,
the right line with wrong fields, deep nesting). The number of inputs per parser is the Hypothesis
profile's: ``ci`` by default, ``--hypothesis-profile=deep`` for 10,000 each with a 1 s deadline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from omsup import envfile, hostspec, lock
from omsup.adapters import hosts, ssh
from omsup.adapters.cm import parse_cm_answer
from omsup.adapters.console import parse_components, parse_envelope, parse_health, parse_projects, parse_steps
from omsup.adapters.hot import parse_backup_folders, parse_top
from omsup.adapters.http import origin
from omsup.adapters.metadb import parse_ha_config, parse_source_config
from omsup.adapters.oms import parse_config_yaml, parse_supervisor_status
from omsup.assumptions import api_version
from omsup.common_secrets import too_common
from omsup.errors import OmsupError
from omsup.record import Facts, Record
from omsup.redact import excerpt, mask_config, printable
from omsup.steps.containers import binds_of, env_of
from omsup.steps.image import loaded_refs, manifest_tags
from omsup.steps.init import output_summary
from omsup.steps.readings import version_from_inspect
from omsup.versions import Version, VersionError, metadb_engine

from .envfiles import BASE

# -- strategies --------------------------------------------------------------------------------------
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)


def nested(depth: int, kind: str) -> Any:
    """A value nested ``depth`` deep, built without recursion."""
    v: Any = 1
    for _ in range(depth):
        v = [v] if kind == "list" else {"a": v}
    return v


deep_values = st.builds(nested, st.integers(1, 3000), st.sampled_from(["list", "dict"]))
deep_json_text = st.builds(
    lambda n, k: ("[" * n + "]" * n) if k == "list" else ('{"a":' * n + "1" + "}" * n),
    st.integers(1, 5000),
    st.sampled_from(["list", "dict"]),
)
# control characters (NUL, ESC, DEL, C1, line and paragraph separators) and trailing newlines, on their own
# and inside ordinary text: what a tool, a file or a terminal escape can put into anything read from outside
controls = st.text(alphabet=st.characters(categories=["Cc", "Zl", "Zp"]), min_size=1, max_size=4)
plain = st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace"))
texts = (
    plain
    | st.builds(lambda a, c, b: a + c + b, st.text(max_size=40), controls, st.text(max_size=40))
    | plain.map(lambda t: t + "\n")
)
any_text = texts | json_values.map(json.dumps) | deep_json_text
any_bytes = st.binary(max_size=300) | any_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
any_data = json_values | deep_values


def with_keys(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that have the expected keys (with values right or wrong) and maybe others."""
    return st.builds(
        lambda fixed, extra: {**extra, **fixed},
        st.fixed_dictionaries({}, optional={k: v | json_values for k, v in keys.items()}),
        st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    )


words = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Zs", "Cc"]), min_size=0, max_size=12)
words = words | words.map(lambda w: w + "\n") | st.builds(lambda w, c: w + c, words, controls)
digits = st.integers(-5, 10**20).map(str) | words
version_like = st.builds(
    lambda a, b, c, suffix: f"{a}.{b}.{c}{suffix}",
    digits,
    digits,
    digits,
    st.sampled_from(["-CE", "-ce", "_ce", "", "-EE", "-CE ", "x", "-CE\n", "\n", "-CE\x00"]),
)
tag_like = st.builds(lambda sep, v: f"feature{sep}{v}", st.sampled_from(["_", "-", ""]), version_like)
image_ref = st.builds(
    lambda repo, tag: f"{repo}:{tag}", st.sampled_from(["oceanbase/oms", "reg:5000/oms", ""]), tag_like
)
line_of = st.builds(
    lambda parts: " ".join(parts), st.lists(digits | st.sampled_from(["-", "50%", "/", "\t"]), max_size=8)
)


# -- the parsers -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Parser:
    name: str
    parse: Callable[[Any], Any]
    inputs: st.SearchStrategy[Any]
    errors: tuple[type[BaseException], ...] = (OmsupError,)  # what it may raise: the project's errors only
    check: Callable[[Any, Any], None] = lambda _value, _input: None  # what a value it returns must satisfy


def _is_version(v: Any, _: Any) -> None:
    assert v is None or Version.parse(str(v)) == v


def _str_map(v: Any, _: Any) -> None:
    assert isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())


def _record(raw: bytes, scratch: Path) -> Any:
    p = scratch / "ledger.json"
    p.write_bytes(raw)
    return Record.load(p)


def _env_file(raw: bytes, scratch: Path) -> Any:
    p = scratch / "env.yaml"
    p.write_bytes(raw)
    return envfile.load(p)


def _valid_ledger(scratch: Path) -> dict[str, Any]:
    rec, _ = Record.open(scratch / "state", "upgrade_429", "prod", Facts(target="4.2.9-CE", environment_file="/e"))
    return json.loads(rec.path.read_text())


def _mutated(doc: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """``doc`` with one key's value replaced by anything (a near miss of a real document)."""

    def paths(d: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        out = [at]
        if isinstance(d, dict):
            for k, v in d.items():
                out += paths(v, at + (k,))
        return out

    def put(path: tuple[Any, ...], value: Any) -> bytes:
        d = json.loads(json.dumps(doc))
        if not path:
            return json.dumps(value).encode()
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        return json.dumps(d).encode()

    return st.builds(put, st.sampled_from(paths(doc)), json_values)


SCRATCH: list[Path] = []


def scratch() -> Path:
    return SCRATCH[0]


PARSERS = [
    Parser("version", Version.parse, any_text | version_like, (VersionError,), _is_version),
    Parser("image tag", Version.from_image_tag, any_text | tag_like, (VersionError,), _is_version),
    Parser(
        "image version from inspect and tags",
        lambda a: version_from_inspect(a[0], a[1]),
        st.tuples(
            any_data
            | with_keys(
                {
                    "Config": with_keys(
                        {"Image": image_ref, "Labels": with_keys({"com.oceanbase.oms.version": version_like})}
                    ),
                    "Image": st.text(max_size=20),
                }
            ),
            st.lists(image_ref | st.text(max_size=30), max_size=4),
        ),
        (),
        _is_version,
    ),
    Parser(
        "console envelope",
        parse_envelope,
        any_bytes | with_keys({"success": st.booleans()}).map(lambda d: json.dumps(d).encode()),
    ),
    Parser("console health", parse_health, any_data | with_keys({"healthy": st.booleans()})),
    Parser(
        "console ListProjects",
        parse_projects,
        any_data
        | st.lists(with_keys({"id": st.text(max_size=8) | st.integers(), "status": st.text(max_size=8)}), max_size=4),
    ),
    Parser(
        "console DescribeProjectSteps",
        parse_steps,
        any_data | st.lists(with_keys({"name": st.text(max_size=8), "status": st.text(max_size=8)}), max_size=4),
    ),
    Parser(
        "console DescribeProjectComponents",
        parse_components,
        any_data
        | with_keys(
            {
                "incrSyncComponents": st.lists(
                    with_keys(
                        {
                            "name": st.text(max_size=8),
                            "config": with_keys({"source": any_data | with_keys({"password": st.text(max_size=8)})}),
                        }
                    ),
                    max_size=3,
                )
                | any_data
            }
        ),
    ),
    Parser(
        "CM answer",
        parse_cm_answer,
        any_bytes
        | with_keys({"isSuccess": st.booleans(), "errMsg": json_values}).map(lambda d: json.dumps(d).encode()),
    ),
    Parser(
        "image archive manifest.json",
        manifest_tags,
        any_text | st.lists(with_keys({"RepoTags": st.lists(image_ref, max_size=3) | json_values})).map(json.dumps),
        (ValueError,),
    ),
    Parser(
        "docker load output",
        loaded_refs,
        any_text | st.lists(image_ref).map(lambda refs: "\n".join(f"Loaded image: {r}" for r in refs)),
        (),
    ),
    Parser(
        "docker top",
        lambda t: parse_top(t, "docker top"),
        any_text
        | st.builds(
            lambda rows: "PID PPID COMMAND\n" + "\n".join(rows),
            st.lists(line_of | st.builds(lambda a, b, c: f"{a} {b} {c}", digits, digits, words), max_size=4),
        ),
        check=lambda v, _: all(isinstance(p.pid, int) and isinstance(p.args, str) for p in v),
    ),
    Parser(
        "backup folders in the container",
        parse_backup_folders,
        any_text | st.lists(st.builds(lambda w: f"/home/admin/logs/backup{w}", words), max_size=4).map("\n".join),
        (),
        check=lambda v, _: all(x.startswith("/home/admin/logs/backup") and "\n" not in x for x in v),
    ),
    Parser(
        "docker inspect Binds",
        binds_of,
        any_data
        | with_keys({"HostConfig": with_keys({"Binds": st.lists(st.text(max_size=20) | json_values, max_size=3)})}),
    ),
    Parser(
        "docker inspect Env",
        env_of,
        any_data | with_keys({"Config": with_keys({"Env": st.lists(st.text(max_size=20) | json_values, max_size=3)})}),
        check=_str_map,
    ),
    Parser("docker_init.sh output", output_summary, texts, ()),
    Parser(
        "supervisorctl status",
        parse_supervisor_status,
        texts
        | st.lists(
            st.builds(
                lambda p, s, rest: f"{p} {s} {rest}",
                words,
                st.sampled_from(["RUNNING", "STARTING", "FATAL", "x"]),
                words,
            ),
        ).map("\n".join),
        (),
        _str_map,
    ),
    Parser(
        "config.yaml",
        lambda t: parse_config_yaml(t, "config.yaml"),
        any_text
        | json_values.map(yaml.safe_dump)
        | st.sampled_from(
            [
                "!!timestamp x",
                "!!int x",
                "!!float x",
                "a: !!binary x",
                "&a [*a]",
                "a: &x [1]\nb: *x",
                "!!python/object:os.system x",
            ]
        ),
    ),
    Parser(
        "ha.config",
        lambda t: parse_ha_config(t, "ha.config"),
        any_text
        | any_bytes
        | with_keys({"enable": st.booleans(), "perceiveStoreClientCheckpoint": st.booleans()}).map(json.dumps),
    ),
    Parser("connector source_config", parse_source_config, any_text | any_bytes, (), lambda v, _: isinstance(v, dict)),
    Parser(
        "lock holder",
        lock.parse_holder,
        any_text | with_keys({k: st.text(max_size=8) | st.integers() for k in lock.HOLDER_KEYS}).map(json.dumps),
        (),
        lambda v, _: isinstance(lock.describe(v), str),
    ),
    Parser(
        "file facts (stat, sha256sum)",
        lambda t: hosts.parse_file_facts(t, "f"),
        texts
        | st.builds(lambda a, b: f"{a}\n{b}  -\n", digits, st.text(alphabet="0123456789abcdefABCDEF", max_size=66)),
    ),
    Parser("free bytes (df -P)", lambda t: hosts.parse_df(t, "f"), texts | line_of),
    Parser(
        "clock (date)",
        lambda t: hosts.parse_clock(t, "h"),
        texts
        | st.builds(
            lambda a, b, c: f"{a}.{b}\n{c}\n",
            digits,
            digits,
            st.builds(lambda s, n: s + n, st.sampled_from("+-x"), digits),
        ),
    ),
    Parser("ssh -G output", ssh.parse_ssh_g, texts, (), _str_map),
    Parser(
        "ssh:// address",
        ssh.parse_spec,
        any_text
        | st.builds(
            lambda u, h, p: f"ssh://{u}@{h}:{p}", words, words | st.just("[fd00::1]") | st.just("fd00::1"), digits
        ),
    ),
    Parser(
        "tcp:// address (hostspec)",
        lambda t: hostspec.parse_url(t, "tcp"),
        any_text | st.builds(lambda h, p: f"tcp://{h}:{p}", words | st.just("[::1]") | st.just("::1"), digits),
        (hostspec.SpecError,),
        check=lambda v, _: v[0] is None and isinstance(v[1], str) and 1 <= v[2] <= 65535,
    ),
    Parser(
        "ssh ProxyJump value",
        lambda t: ssh.parse_hops(t, "host x"),
        any_text
        | st.lists(
            st.builds(lambda u, h, p: f"{u}@{h}:{p}", words, words | st.just("[::1]"), digits), min_size=1, max_size=3
        ).map(",".join),
        (OmsupError,),
        lambda v, _: all(isinstance(h, str) and h for _, h, _ in v),
    ),
    Parser(
        "lock holder with its identity",
        lock.parse_holder,
        with_keys(
            {k: st.text(max_size=8) | st.integers() | controls for k in (*lock.HOLDER_KEYS, *lock.IDENTITY_KEYS)}
        ).map(json.dumps),
        (),
        lambda v, _: isinstance(lock.describe(v), str) and isinstance(lock.may_live(v)[0], bool),
    ),
    Parser(
        "printable (outside text shown on a terminal)",
        printable,
        any_text,
        (),
        lambda v, _: not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in v),
    ),
    Parser("common secret check", too_common, any_text | words, (), lambda v, _: v is None or isinstance(v, str)),
    Parser("HTTP redirect origin", origin, any_text, (ValueError,), lambda v, _: len(v) == 3),
    Parser(
        "engine ApiVersion",
        api_version,
        any_data | st.builds(lambda a, b: f"{a}.{b}", digits, digits),
        (),
        lambda v, _: isinstance(v, tuple) and len(v) == 2,
    ),
    Parser(
        "MetaDB VERSION()",
        lambda a: metadb_engine(a[0], a[1]),
        st.tuples(texts | version_like, texts | st.builds(lambda v: f"OceanBase CE {v}", version_like)),
        (),
        lambda v, _: v[0] in ("OceanBase", "MySQL", "MariaDB"),
    ),
    Parser("connector config masking", mask_config, any_data, ()),
    Parser("report excerpt", excerpt, any_data | any_bytes, (), lambda v, _: isinstance(v, str) and len(v) <= 200),
    Parser(
        "run ledger",
        lambda raw: _record(raw, scratch()),
        any_bytes | st.deferred(lambda: _mutated(_valid_ledger(scratch()))),
    ),
    Parser(
        "environment file",
        lambda raw: _env_file(raw, scratch()),
        any_bytes
        | st.deferred(lambda: _mutated(BASE)).map(lambda b: yaml.safe_dump(json.loads(b)).encode())
        | st.sampled_from(
            [b"!!timestamp x", b"name: !!int x", b"a: &a [*a, *a]", b"\xff\xfe", b"[" * 500, b"name: \x00"]
        ),
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _scratch(tmp_path_factory):
    os.environ.setdefault("OMSUP_TEST_PW", "pw-12345-x")
    os.environ.setdefault("OMSUP_TEST_CONSOLE_PW", "cpw-12345-x")
    SCRATCH[:] = [tmp_path_factory.mktemp("parsers")]
    yield


@pytest.mark.parametrize("parser", PARSERS, ids=[p.name for p in PARSERS])
@given(data=st.data())
def test_parser_is_total(parser: Parser, data: st.DataObject) -> None:
    value = data.draw(parser.inputs, label="input")
    try:
        got = parser.parse(value)
    except parser.errors as e:
        assert str(e).strip(), f"{parser.name}: an error without a message"
        return
    parser.check(got, value)


def test_every_parser_has_a_distinct_name():
    assert len({p.name for p in PARSERS}) == len(PARSERS) >= 35
