"""Property-based: an environment file with any value at any key gives the project's own clear error naming
the file and the key (the parsers of outside text: test_parsers_total.py)."""

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omsup import envfile
from omsup.errors import ConfigError

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


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # examples: the profile's (ci, deep)
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


def test_tool_output_summary_names_the_last_line():
    from omsup.steps.init import output_summary

    out = "Traceback (most recent call last):\n  File x\n\npymysql.err.OperationalError: (2003, 'refused')\n\n"
    assert output_summary(out)[0] == "pymysql.err.OperationalError: (2003, 'refused')"
