"""Version parsing and the documented upgrade paths (docs 000, 001/002, 004)."""

import pytest

from omsup.versions import (
    KNOWN_VERSIONS,
    UPGRADE_RULES,
    Version,
    VersionError,
    check_upgrade,
    rule_for,
    upgrade_chain,
)


@pytest.mark.parametrize("text", ["4.2.8-CE", "V4.2.8-CE", "4.2.8-ce", "4.2.8", "v4.2.8_CE", " 4.2.8-CE "])
def test_parse_accepts_the_usual_spellings(text):
    assert Version.parse(text) == Version(4, 2, 8)
    assert str(Version.parse(text)) == "4.2.8-CE"


@pytest.mark.parametrize("text", ["", "4.2", "4.2.8.1", "4.2.x-CE", "4.2.8-EE", "latest", "4.2.8-CE; drop", None, 428])
def test_parse_refuses_malformed_versions_with_what_was_seen(text):
    with pytest.raises(VersionError, match="expected a version such as 4.2.8-CE"):
        Version.parse(text)


def test_image_tag_round_trip():
    v = Version.parse("4.2.9-CE")
    assert v.image_tag == "feature_4.2.9-ce"
    assert Version.from_image_tag("feature_4.2.9-ce") == v
    assert Version.from_image_tag("4.2.9-CE") == v
    assert v.short == "429"


def test_ordering_is_numeric_not_lexical():
    assert Version.parse("4.2.10") > Version.parse("4.2.9")
    assert sorted(KNOWN_VERSIONS) == list(KNOWN_VERSIONS)


@pytest.mark.parametrize("source", [f"4.2.{i}-CE" for i in range(9)])
def test_429_from_every_420_to_428(source):
    check_upgrade(source, "4.2.9-CE")


@pytest.mark.parametrize("source", ["3.2.2", "3.3.0", "3.3.1", "4.0.0", "4.1.0", "4.1.1", "4.2.9"])
def test_429_refused_from_anything_else_with_the_documents_reason(source):
    with pytest.raises(VersionError, match="can only be upgraded from V4.2.0-CE to V4.2.8-CE"):
        check_upgrade(source, "4.2.9-CE")


def test_331_only_from_330():
    check_upgrade("3.3.0", "3.3.1")
    with pytest.raises(VersionError, match="V3.2.2-CE > V3.3.0-CE > V3.3.1-CE"):
        check_upgrade("3.2.2", "3.3.1")


def test_400_from_322_330_and_331():
    """OD V4.0.0 faq: "V3.2.2-CE, V3.3.0-CE and V3.3.1-CE can be directly upgraded to V4.0.0-CE" (it was refused)."""
    check_upgrade("3.2.2", "4.0.0")
    check_upgrade("3.3.0", "4.0.0")
    check_upgrade("3.3.1", "4.0.0")
    with pytest.raises(VersionError):
        check_upgrade("3.2.1", "4.0.0")
    assert [r.runbook for r in upgrade_chain("3.3.1-CE", "4.0.0-CE")] == ["upgrade_400"]


def test_no_rule_for_an_undocumented_target():
    with pytest.raises(VersionError, match="no documented upgrade to 4.1.1-CE"):
        rule_for("4.1.1")  # 4.1.1 changed the metadata: deployed anew, never upgraded to


def test_chain_names_runbooks_in_order():
    chain = upgrade_chain("3.2.2", "3.3.1")
    assert [str(r.target) for r in chain] == ["3.3.0-CE", "3.3.1-CE"]
    assert chain[-1].runbook == "upgrade_331"
    assert [r.runbook for r in upgrade_chain("4.2.3", "4.2.9")] == ["upgrade_429"]
    assert upgrade_chain("4.2.9", "4.2.9") == []


@pytest.mark.parametrize(
    ("pair", "said"),
    [
        (("4.1.0", "4.2.9"), "4.1.1-CE changed the metadata"),  # OD V4.1.1 upgrade guide: redeploy
        (("4.0.0", "4.1.1"), "Deploy 4.1.1-CE anew"),
        (("4.2.2", "4.2.6"), "from 4.2.2-CE the documents lead to 4.2.9-CE"),
        (("4.2.9", "4.2.8"), "4.2.8-CE is older; a version goes back only by the rollback of the upgrade"),
    ],
)
def test_chain_says_when_no_documented_path_exists_and_where_the_documents_lead(pair, said):
    with pytest.raises(VersionError, match="no documented upgrade path") as e:
        upgrade_chain(*pair)
    assert said in str(e.value)


def test_every_rule_names_a_document_and_a_restriction():
    for rule in UPGRADE_RULES:
        assert rule.doc and rule.restriction and rule.sources


def test_every_upgrade_runbook_has_its_rollback_declared_in_the_same_rule():
    """The rule names both runbooks (omsup status and the preflight name the rollback from it); each
    rollback runbook checks at import that the rule names it."""
    import importlib
    from pathlib import Path

    from omsup.versions import rule_of_runbook

    root = Path(__file__).resolve().parents[2] / "runbooks"
    for rule in UPGRADE_RULES:
        if rule.runbook is None:
            assert rule.rollback is None
            continue
        assert rule.rollback and (root / rule.rollback).is_dir(), rule
        assert rule_of_runbook(rule.runbook) is rule and rule_of_runbook(rule.rollback) is rule
        mod = importlib.import_module(f"runbooks.{rule.rollback}.test_{rule.rollback}")
        assert mod.runbook.upgrade_runbook == rule.runbook
    assert rule_of_runbook("connector_dbtype") is None and rule_of_runbook("probe") is None


def test_a_runbook_the_rule_does_not_name_fails_at_import():
    from omsup.runbook import Runbook

    with pytest.raises(RuntimeError, match="the upgrade rule for 4.2.9-CE names runbook 'upgrade_429'"):
        Runbook.upgrade("upgrade_429b", target="4.2.9-CE", doc="004", title="x")
    with pytest.raises(RuntimeError, match="the upgrade rule for 4.2.9-CE names rollback 'rollback_429'"):
        Runbook.rollback("rollback_429b", target="4.2.9-CE", doc="004", title="x")


def test_the_readme_carries_the_assumptions_table_as_the_code_has_it():
    from pathlib import Path

    from omsup.assumptions import ASSUMPTIONS, markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "run: python -m omsup.assumptions, and put its table in the README"
    assert {a.kind for a in ASSUMPTIONS} == {"documented", "observed", "manual"}
