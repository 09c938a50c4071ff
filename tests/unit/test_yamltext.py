"""The look at YAML text that refuses deep flow nesting before PyYAML recurses through it."""

from __future__ import annotations

import pytest

from omsup.yamltext import flow_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("a: 1\n", 0),
        ("a: [1, 2]\nb: {c: [3]}\n", 2),
        ("[" * 5000 + "]" * 5000, 5000),
        ('a: "[[[[["\n', 0),  # inside quotes
        ("a: '[[[['' [['\n", 0),  # a doubled single quote stays inside
        ('a: "\\"[[["\n', 0),  # an escaped double quote stays inside
        ("a: 1 # [[[[\nb: [x]\n", 1),  # a comment
        ("a: x#[[\n", 2),  # '#' inside a plain scalar is not a comment
        ("]]]]a: [1]", 1),  # unbalanced closers never go below zero
    ],
)
def test_flow_depth(text, depth):
    assert flow_depth(text) == depth


def test_deep_flow_nesting_is_refused_by_both_yaml_readers(tmp_path):
    from omsup.adapters.oms import parse_config_yaml
    from omsup.errors import OmsupError

    deep = "a: " + "[" * 4000 + "]" * 4000 + "\n"
    with pytest.raises(OmsupError, match="more than 32 deep"):
        parse_config_yaml(deep, "config.yaml")
    assert parse_config_yaml("a: [[[1]]]\n", "config.yaml") == {"a": [[[1]]]}
