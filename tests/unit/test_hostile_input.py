"""Property-based: hostile and malformed input gives the project's own clear errors, never a traceback."""

import copy
import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omsup import envfile
from omsup.adapters.console import parse_envelope
from omsup.errors import ConfigError, NotReady
from omsup.steps.image import manifest_tags
from omsup.versions import Version, VersionError

from .envfiles import BASE

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
PATHS = [
    ("name",),
    ("container",),
    ("version",),
    ("packages",),
    ("metadb",),
    ("metadb", "host"),
    ("metadb", "port"),
    ("metadb", "user"),
    ("metadb", "password"),
    ("metadb", "rm"),
    ("regions",),
    ("regions", 0, "cm_hb"),
    ("regions", 0, "nodes"),
    ("regions", 0, "nodes", 0, "ip"),
    ("regions", 0, "nodes", 0, "host"),
    ("regions", 0, "nodes", 0, "docker"),
    ("backup", "dir"),
    ("backup", "host"),
    ("ha",),
    ("ha", "refetch_margin_min"),
    ("console", "port"),
    ("console", "password"),
    ("state_dir",),
]


@given(st.text(max_size=40))
def test_version_parse_is_total(text):
    try:
        v = Version.parse(text)
    except VersionError as e:
        assert "expected a version" in str(e)
    else:
        assert Version.parse(str(v)) == v


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=json_values)
def test_env_loader_only_raises_config_errors(tmp_path, monkeypatch, path, value):
    monkeypatch.setenv("OMSUP_TEST_PW", "pw-12345-x")
    monkeypatch.setenv("OMSUP_TEST_CONSOLE_PW", "cpw-12345-x")
    doc = copy.deepcopy(BASE)
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    p = tmp_path / "env.yaml"
    p.write_text(yaml.safe_dump(doc))
    try:
        env = envfile.load(p)
    except ConfigError as e:
        assert str(p) in str(e) and "key '" in str(e)
    else:  # whatever got through is within the strict patterns
        for _, db in env.databases():
            assert db.replace("_", "").isalnum()
        assert " " not in env.container and "`" not in env.container


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_env_loader_survives_any_bytes(tmp_path, blob):
    p = tmp_path / "env.yaml"
    p.write_bytes(blob)
    try:
        envfile.load(p)
    except ConfigError:
        pass


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_console_envelope_parser(raw):
    try:
        env = parse_envelope(raw)
    except NotReady as e:
        assert "answer" in e.message
    else:
        assert isinstance(env, dict) and "success" in env


@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_manifest_parser(text):
    try:
        tags = manifest_tags(text)
    except ValueError as e:
        assert "manifest.json" in str(e)
    else:
        assert all(isinstance(t, str) for t in tags)


@given(st.text(max_size=60))
def test_image_tags(text):
    try:
        Version.from_image_tag(text)
    except VersionError:
        pass


@given(json_values)
def test_docker_inspect_binds_and_env_readers(attrs):
    from omsup.errors import ContainerProblem
    from omsup.steps.containers import binds_of, env_of

    for section, key, reader in (("HostConfig", "Binds", binds_of), ("Config", "Env", env_of)):
        for shaped in (attrs, {section: attrs}, {section: {key: attrs}}):
            try:
                got = reader(shaped)
            except ContainerProblem as e:
                assert f"{section}.{key}" in str(e)
                continue
            assert isinstance(got, (list, dict))
            assert all(isinstance(x, str) for x in (got if isinstance(got, list) else [*got, *got.values()]))


@given(st.text(max_size=400))
def test_tool_output_summary_is_total(out):
    from omsup.steps.init import output_summary

    last, shown = output_summary(out)
    assert last and "\n" not in last
    assert len(shown.splitlines()) <= 12
    if out.strip():
        assert last in out


def test_tool_output_summary_names_the_last_line():
    from omsup.steps.init import output_summary

    out = "Traceback (most recent call last):\n  File x\n\npymysql.err.OperationalError: (2003, 'refused')\n\n"
    assert output_summary(out)[0] == "pymysql.err.OperationalError: (2003, 'refused')"
