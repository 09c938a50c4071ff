"""Plausible products (issue 27): the runbooks pass on every behaviour the public sources leave open.

The stand-in offers each such behaviour as a variant (sandbox/facts.py VARIANTS). CI runs the probe,
upgrade_429 and rollback_429 on the default stand-in (the other test files) and on all variants at once
(below); ``OMSUP_VARIANTS=each`` adds a run on each variant alone, and ``OMSUP_VARIANTS=each,3x`` the 3.x
upgrades and the Connector fix on each too (README, "Opt-in profiles").
"""

from __future__ import annotations

import json
import os

import pytest

from sandbox import facts

from .conftest import assert_restored
from .test_probe import probe
from .test_upgrade_429 import assert_passed

pytestmark = pytest.mark.integration

ALL = sorted(facts.VARIANTS)


def wanted() -> list[tuple[str, ...]]:
    profile = {p.strip() for p in os.environ.get("OMSUP_VARIANTS", "").split(",") if p.strip()}
    unknown = profile - {"each", "3x"}  # a mistyped profile fails collection, never a silent no-op
    if unknown:
        raise pytest.UsageError(f"OMSUP_VARIANTS: unknown {sorted(unknown)}; expected 'each' and/or '3x'")
    sets: list[tuple[str, ...]] = [tuple(ALL)]
    if "each" in profile:
        sets += [(v,) for v in ALL]
    return sets


def args_of(variants: tuple[str, ...]) -> list[str]:
    return [a for v in variants for a in ("--variant", v)]


def test_every_variant_is_documented_in_the_readme():
    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for v in ALL:
        assert f"`{v}`" in readme, f"variant {v} is not in the README"


@pytest.mark.parametrize("variants", wanted(), ids=lambda v: "+".join(v) if len(v) < len(ALL) else "all-variants")
def test_probe_upgrade_and_rollback_pass_on_the_variant(sandbox, variants):
    sandbox.fresh(*args_of(variants))
    p, results = probe(sandbox)
    assert_passed(p, 1)
    assert not [k for k, r in results.items() if r["result"] == "BROKEN"]
    if "init-flag" not in variants:  # what the probe observes is what the deployment does
        assert all("absent" in str(v) for v in results["init_flag"]["seen"].values())
    if "custom-ports" in variants:
        assert "18089" in json.dumps(results["config_yaml"]["seen"])

    assert_passed(sandbox.runbook("upgrade_429", "--until", "4"), 5)
    at_backup = sandbox.snapshot()
    up = sandbox.runbook("upgrade_429")
    assert_passed(up, 11)
    report = sandbox.last_report("upgrade_429")
    summary = json.loads((report / "summary.json").read_text())
    rm = sandbox.status()["metadb"]["rm"]
    newest = max(r[0] for r in sandbox.sql("SELECT version FROM oms_version", rm))
    if "oms-version-not-written" in variants:
        assert newest == "4.2.8-CE"
        assert any("still names 4.2.8-CE" in w for w in summary["warnings"]), summary["warnings"]
    else:
        assert newest == "4.2.9-CE" and not any("oms_version" in w for w in summary["warnings"])
    if "heartbeat-local-time" in variants:
        assert any("far from the MetaDB's clock" in w for w in summary["warnings"]), summary["warnings"]
    led = json.loads((report / "ledger.json").read_text())["facts"]
    attempts = [a for node in led["init_outputs"].values() for a in node]
    assert all(a["rc"] == 0 for a in attempts) and all(bool(a["flag"]) == ("init-flag" in variants) for a in attempts)
    for ctrs in sandbox.containers().values():
        assert ctrs["oms_ce"]["image"].endswith(":feature_4.2.9_ce") and ctrs["oms_ce"]["running"]

    assert_passed(sandbox.runbook("rollback_429"), 8)
    assert_restored(at_backup, sandbox.snapshot())
    for ctrs in sandbox.containers().values():
        assert ctrs["oms_ce"]["image"].endswith(":feature_4.2.8_ce") and ctrs["oms_ce"]["running"]


PROFILE = {p.strip() for p in os.environ.get("OMSUP_VARIANTS", "").split(",") if p.strip()}
# cm-no-byname stops the Connector fix on purpose (tests/integration/test_upgrade_3x.py)
USABLE_3X = tuple(v for v in ALL if v != "cm-no-byname")

if "3x" in PROFILE:  # an opt-in profile: defined only when asked for, never a skip in CI's run

    @pytest.mark.parametrize(
        "variants",
        [USABLE_3X, *([(v,) for v in USABLE_3X] if "each" in PROFILE else [])],
        ids=lambda v: "+".join(v),
    )
    def test_the_3x_upgrades_and_the_connector_fix_pass_on_the_variant(sandbox, variants):
        sandbox.fresh("--version", "3.3.0-CE", "--nodes", "1", *args_of(variants))
        assert_passed(sandbox.runbook("connector_dbtype"), 2)
        assert_passed(sandbox.runbook("upgrade_331", "--until", "5"), 6)
        at_backup = sandbox.snapshot()
        assert_passed(sandbox.runbook("upgrade_331"), 12)
        assert_passed(sandbox.runbook("rollback_331"), 8)
        assert_restored(at_backup, sandbox.snapshot())
        sandbox.fresh("--version", "3.3.1-CE", "--nodes", "1", *args_of(variants))
        assert_passed(sandbox.runbook("upgrade_400", "--until", "5"), 6)
        at_backup = sandbox.snapshot()
        assert_passed(sandbox.runbook("upgrade_400"), 12)
        assert_passed(sandbox.runbook("rollback_400"), 8)
        assert_restored(at_backup, sandbox.snapshot())
