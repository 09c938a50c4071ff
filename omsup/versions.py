"""OMS CE versions and the documented upgrade paths, as data.

This module has no dependency outside the standard library on purpose: the sandbox
copies it into the stand-in image so that the stand-in's ``docker_init.sh`` and the
runbooks' preflight obey the very same rules.

Sources (shared/seeds): 000 (3.3.1: path 3.2.2 > 3.3.0 > 3.3.1), 001/002 (4.0.0 from
3.2.2, and 3.3.0 holding projects created on 3.2.1/3.2.2), 004 (4.2.9 only from
4.2.0 .. 4.2.8; "Version before 4.1.1 is not allowed to upgrade").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION_RE = re.compile(r"^[Vv]?(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[-_]?(CE|ce|Ce))?$")
_TAG_RE = re.compile(r"^feature_(\d{1,3}\.\d{1,3}\.\d{1,3})(?:[-_]ce)?$", re.IGNORECASE)


class VersionError(ValueError):
    """A version string that is not an OMS CE version."""


@dataclass(frozen=True, order=True)
class Version:
    """An OMS Community Edition version such as ``4.2.8-CE``."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: object) -> Version:
        """Parse ``4.2.8-CE``, ``V4.2.8-CE``, ``4.2.8-ce`` or ``4.2.8``.

        Raises:
            VersionError: with the text seen and the form expected.
        """
        if isinstance(text, Version):
            return text
        if not isinstance(text, str):
            raise VersionError(f"expected a version such as 4.2.8-CE, saw {text!r} ({type(text).__name__})")
        m = _VERSION_RE.fullmatch(text.strip())
        if not m:
            raise VersionError(f"expected a version such as 4.2.8-CE, saw {text!r}")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    @classmethod
    def from_image_tag(cls, tag: str) -> Version:
        """The version an image tag names: ``feature_4.2.8-ce`` (doc 003/004 IMAGE_TAG form) or ``4.2.8-CE``."""
        m = _TAG_RE.fullmatch(tag.strip())
        if m:
            return cls.parse(m.group(1))
        return cls.parse(tag)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}-CE"

    @property
    def image_tag(self) -> str:
        """The tag the installation package of this version loads as (doc 004: ``feature_x.x.x-ce``)."""
        return f"feature_{self.major}.{self.minor}.{self.patch}-ce"

    @property
    def short(self) -> str:
        """``428`` for 4.2.8-CE, as in the database names rm_428, cm_428 (doc 004)."""
        return f"{self.major}{self.minor}{self.patch}"


V = Version.parse

#: Every version the runbooks and the sandbox handle, oldest first.
KNOWN_VERSIONS: tuple[Version, ...] = tuple(
    V(v)
    for v in (
        "3.2.2",
        "3.3.0",
        "3.3.1",
        "4.0.0",
        "4.1.0",
        "4.1.1",
        "4.2.0",
        "4.2.1",
        "4.2.2",
        "4.2.3",
        "4.2.4",
        "4.2.5",
        "4.2.6",
        "4.2.7",
        "4.2.8",
        "4.2.9",
        "4.2.10",
        "4.2.11",
        "4.2.12",
        "4.2.13",
    )
)

#: OD V4.1.1 upgrade guide (field notes): 4.1.1 changed the metadata; an OMS below it cannot be upgraded to 4.1.1
#: or later, it is redeployed (the FAQ: login fails with an authentication error after such an upgrade).
REDEPLOY_BOUNDARY = V("4.1.1")
#: OD 1300.upgrade-guide/309.hot-upgrade.md (4.2.11-era pages, field notes): the hot upgrade from V4.2.1-CE; the
#: only public way to 4.2.10 .. 4.2.13, whose cold procedure no public copy holds.
HOT_UPGRADE_FROM = V("4.2.1")
HOT_ONLY_TARGETS = tuple(V(v) for v in ("4.2.10", "4.2.11", "4.2.12", "4.2.13"))

#: doc 004's recovery (verbatim DDL from obd, shared/oms-interfaces.md); the table lives in rm.
OMS_VERSION_DDL = """CREATE TABLE IF NOT EXISTS `oms_version` (
  `version` varchar(64) NOT NULL COMMENT 'Version',
  `gmt_modified` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`version`)
) DEFAULT CHARSET = utf8mb4 COMMENT = 'Version Table'"""


@dataclass(frozen=True)
class UpgradeRule:
    """One documented upgrade target: where it may come from, and why not otherwise."""

    target: Version
    sources: tuple[Version, ...]
    doc: str
    restriction: str
    runbook: str | None = None
    rollback: str | None = None  # the runbook that undoes a run of ``runbook`` (with its backups)
    # projects real-time and their forward switchover done: required where the document says "make sure"
    # (000, 001/002), only recommended elsewhere (the zh 4.2.9 page; field notes): then a warning names them
    projects_rule: str = "recommended"
    # "cold": a new container on migrated metadata (HA off, T1/T2); "hot": the files replaced in the running
    # container, the tasks kept running (OD 1300.upgrade-guide/309.hot-upgrade.md)
    kind: str = "cold"

    def allows(self, source: Version) -> bool:
        return source in self.sources


def _range(lo: str, hi: str) -> tuple[Version, ...]:
    a, b = V(lo), V(hi)
    return tuple(v for v in KNOWN_VERSIONS if a <= v <= b)


UPGRADE_RULES: tuple[UpgradeRule, ...] = (
    UpgradeRule(
        V("3.3.0"),
        (V("3.2.2"),),
        "000",
        "OMS Community Edition support upgrade only from the previous version. "
        "The upgrade path is V3.2.2-CE > V3.3.0-CE > V3.3.1-CE.",
        projects_rule="required",
    ),
    UpgradeRule(
        V("3.3.1"),
        (V("3.3.0"),),
        "000/003",
        "OMS Community Edition support upgrade only from the previous version. "
        "The upgrade path is V3.2.2-CE > V3.3.0-CE > V3.3.1-CE.",
        runbook="upgrade_331",
        rollback="rollback_331",
        projects_rule="required",
    ),
    UpgradeRule(
        V("4.0.0"),
        (V("3.2.2"), V("3.3.0"), V("3.3.1")),
        "001/002",
        "V4.0.0-CE is documented from V3.2.2-CE and V3.3.0-CE (001/002), and from V3.3.1-CE (OD V4.0.0 faq: "
        '"V3.2.2-CE, V3.3.0-CE and V3.3.1-CE can be directly upgraded to V4.0.0-CE").',
        runbook="upgrade_400",
        rollback="rollback_400",
        projects_rule="required",
    ),
    UpgradeRule(
        V("4.1.0"),
        (V("3.2.2"), V("3.3.0"), V("3.3.1"), V("4.0.0")),
        "OD V4.1.0",
        "OD V4.1.0 faq: OMS V3.2.2-CE, V3.3.0-CE, V3.3.1-CE and V4.0.0-CE can be directly upgraded to OMS V4.1.0-CE.",
        runbook="upgrade_410",
        rollback="rollback_410",
        projects_rule="required",
    ),
    UpgradeRule(
        V("4.2.0"),
        (V("4.1.1"),),
        "OD V4.2.0",
        "Currently, it is only supported to upgrade from OMS Community Edition V4.1.1 to Community Edition V4.2.0. "
        "Upgrading from versions lower than Community Edition V4.1.1 to Community Edition V4.2.0 is not supported.",
        runbook="upgrade_420",
        rollback="rollback_420",
        projects_rule="required",
    ),
    UpgradeRule(
        V("4.2.1"),
        (V("4.2.0"),),
        "OD V4.2.1",
        "Currently, it is only supported to upgrade from OMS Community Edition V4.2.0 to Community Edition V4.2.1. "
        "Upgrading from versions lower than Community Edition V4.2.0 to Community Edition V4.2.1 is not supported.",
        runbook="upgrade_421",
        rollback="rollback_421",
        projects_rule="required",
    ),
    UpgradeRule(
        V("4.2.2"),
        (V("4.2.1"),),
        "OD V4.2.2",
        "Currently, it is only supported to upgrade from OMS Community Edition V4.2.1 to Community Edition V4.2.2. "
        "Upgrading from versions lower than Community Edition V4.2.1 to Community Edition V4.2.2 is not supported.",
        runbook="upgrade_422",
        rollback="rollback_422",
        projects_rule="required",
    ),
    UpgradeRule(
        V("4.2.6"),
        (V("4.2.4"),),
        "OD 4.2.6 (en site)",
        "V4.2.6-CE is documented from V4.2.4-CE (field notes: the OD en site's upgrade guide).",
        runbook="upgrade_426",
        rollback="rollback_426",
    ),
    UpgradeRule(
        V("4.2.9"),
        _range("4.2.0", "4.2.8"),
        "004",
        "OMS Community Edition V4.2.9-CE can only be upgraded from V4.2.0-CE to V4.2.8-CE. "
        "Upgrading from versions earlier than V4.2.0-CE to V4.2.9-CE is not supported.",
        runbook="upgrade_429",
        rollback="rollback_429",
    ),
    UpgradeRule(
        V("4.2.13"),
        _range("4.2.1", "4.2.12"),
        "OD 309",
        "The hot upgrade (OD zh-CN/1300.upgrade-guide/309.hot-upgrade.md, limits): "
        "OMS 社区版的版本必须大于等于 V4.2.1 (the OMS CE version must be V4.2.1 or later).",
        runbook="hot_upgrade_4213",
        rollback="hot_rollback_4213",
        kind="hot",
    ),
)


def rule_for(target: Version | str) -> UpgradeRule:
    """The documented rule for upgrading to ``target``.

    Raises:
        VersionError: no document describes an upgrade to that version.
    """
    t = Version.parse(target)
    for rule in UPGRADE_RULES:
        if rule.target == t:
            return rule
    known = ", ".join(str(r.target) for r in UPGRADE_RULES)
    raise VersionError(f"no documented upgrade to {t}; documented targets: {known}")


def rule_of_runbook(runbook: str) -> UpgradeRule | None:
    """The documented upgrade whose upgrade or rollback runbook is ``runbook`` (None: neither, such
    as the Connector fix or the probe)."""
    return next((r for r in UPGRADE_RULES if runbook in (r.runbook, r.rollback)), None)


def check_upgrade(source: Version | str, target: Version | str) -> None:
    """Refuse an upgrade the documents do not allow, with the document's own reason.

    Raises:
        VersionError: the document's restriction, and the versions seen.
    """
    s, t = Version.parse(source), Version.parse(target)
    rule = rule_for(t)
    if not rule.allows(s):
        raise VersionError(f"upgrade {s} -> {t} is not documented. Doc {rule.doc}: {rule.restriction}")


def upgrade_chain(source: Version | str, target: Version | str) -> list[UpgradeRule]:
    """The shortest chain of documented upgrades from ``source`` to ``target`` (empty if equal).

    Raises:
        VersionError: no documented chain exists.
    """
    s, t = Version.parse(source), Version.parse(target)
    if s == t:
        return []
    if s < REDEPLOY_BOUNDARY <= t:
        raise VersionError(
            f"no documented upgrade path leads from {s} to {t}: {REDEPLOY_BOUNDARY} changed the metadata, and an OMS "
            f"below it is not upgraded to {REDEPLOY_BOUNDARY} or later but deployed anew (OD V4.1.1 upgrade guide; the "
            f"FAQ: logging in fails with an authentication error after such an upgrade). Deploy {t} anew (its "
            "deployment guide)"
        )
    if t in HOT_ONLY_TARGETS and not any(r.target == t for r in UPGRADE_RULES):
        hot = ", ".join(str(r.target) for r in UPGRADE_RULES if r.kind == "hot")
        raise VersionError(
            f"no documented cold upgrade leads to {t}: no public copy of its cold procedure was found. The vendor "
            f"documents a hot upgrade from {HOT_UPGRADE_FROM} on (OD 1300.upgrade-guide/309.hot-upgrade.md: in place, "
            f"the sync tasks keep running); this version of omsup has it as a runbook for {hot}"
        )
    frontier: list[tuple[Version, list[UpgradeRule]]] = [(s, [])]
    seen = {s}
    while frontier:
        nxt: list[tuple[Version, list[UpgradeRule]]] = []
        for v, path in frontier:
            for rule in UPGRADE_RULES:
                if rule.allows(v) and rule.target not in seen:
                    if rule.target == t:
                        return [*path, rule]
                    seen.add(rule.target)
                    nxt.append((rule.target, [*path, rule]))
        frontier = nxt
    if t < s:
        raise VersionError(
            f"no documented upgrade path leads from {s} to {t}: {t} is older; a version goes back only by the "
            f"rollback of the upgrade that brought it, with that upgrade's backups"
        )
    ahead = ", ".join(str(v) for v in sorted(seen - {s})) or "no other version"
    raise VersionError(f"no documented upgrade path leads from {s} to {t}; from {s} the documents lead to {ahead}")


# -- which MetaDB engines a version runs on --------------------------------------------------------
@dataclass(frozen=True)
class EngineSupport:
    """The MetaDB engines OMS versions ``lowest`` .. ``highest`` (inclusive) are documented to run on."""

    lowest: Version
    highest: Version
    engines: tuple[tuple[str, tuple[int, ...]], ...]  # (engine, lowest engine version)
    source: str


METADB_SUPPORT: tuple[EngineSupport, ...] = (
    EngineSupport(
        V("4.2.0"),
        Version(4, 2, 999),
        (("OceanBase", ()), ("MySQL", (8, 0))),
        "OceanBase community FAQ (all_faq.md, OMS): the 4.2 MetaDB is OceanBase or MySQL 8; with MySQL 5.x the 4.2 "
        "console answers 500 'Conversion not supported for type java.time.LocalDateTime'",
    ),
    EngineSupport(
        V("3.3.0"),
        Version(4, 1, 999),
        (("OceanBase", ()), ("MySQL", (5, 7))),
        "field notes: 3.3.x runs on MySQL 5.7 or 8.0 (3.3.0 had trouble with MySQL 8: caching_sha2_password) or "
        "OceanBase; 4.0.x and 4.1.x are taken to be the same (not documented)",
    ),
    EngineSupport(
        V("3.2.2"),
        Version(3, 2, 999),
        (("OceanBase", ()), ("MySQL", (5, 7))),
        "not documented for 3.2.x: taken to be as 3.3.x",
    ),
)


def metadb_engine(version: str, comment: str = "") -> tuple[str, tuple[int, ...]]:
    """The engine a MetaDB is, from its VERSION() (and @@version_comment): ('OceanBase', (4, 3, 5, 3)),
    ('MySQL', (8, 0, 36)), ('MariaDB', (10, 11, 6))."""
    text = f"{version} {comment}"
    if "oceanbase" in text.lower():
        m = re.search(r"OceanBase(?: Community| CE)?\s+(?:[A-Za-z]+\s+)?v?(\d+(?:\.\d+)+)", comment, re.I)
        return "OceanBase", tuple(int(x) for x in m.group(1).split(".")) if m else ()
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    numbers = tuple(int(x) for x in m.groups() if x is not None) if m else ()
    return ("MariaDB" if "mariadb" in text.lower() else "MySQL"), numbers


def metadb_supported(oms: Version | str, engine: str, engine_version: tuple[int, ...]) -> EngineSupport | None:
    """The rule that lets OMS ``oms`` run on this engine, or None (the refusal names the rules)."""
    v = Version.parse(oms)
    for rule in METADB_SUPPORT:
        if rule.lowest <= v <= rule.highest:
            for name, lowest in rule.engines:
                if name == engine and engine_version[: len(lowest)] >= lowest:
                    return rule
    return None


def metadb_rule_for(oms: Version | str) -> EngineSupport | None:
    v = Version.parse(oms)
    return next((r for r in METADB_SUPPORT if r.lowest <= v <= r.highest), None)
