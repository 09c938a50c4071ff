"""What differs between OMS CE releases, as data the shared steps read (a step never compares versions).

A ``Release`` says what a version's deployment and its upgrade procedure look like, where they
differ: how its console lists projects, whether rm.oms_version exists, where docker_init.sh and its
log are, whether its page documents doc 004's oms_version recovery, what the operator is asked to do
by hand, how its page holds the projects to. Releases are looked up by version (``release_of``); the
upgrade rule of a target names its release (omsup.versions). Adding a release that differs from
another in one point is one entry below.

Sources: the seeds (000, 001/002, 003, 004), oceanbase/oms-doc per-version branches
(``<branch>:en-US/1300.upgrade-guide/*.md``, read here with git), field notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .versions import KNOWN_VERSIONS, Version, VersionError

V = Version.parse


@dataclass(frozen=True)
class Release:
    version: Version
    # the console publishes ListProjects and DescribeProjectComponents (doc: from V4.1.1-CE); before that the
    # runbooks read rm's project tables and cm's Connector tasks (not public: omsup.adapters.metadb)
    console_lists_projects: bool = False
    # rm.oms_version exists (not public which release introduced it: the project chooses 4.2.1, so that a 4.2.0
    # deployment lacks it, as doc 004's recovery implies)
    has_oms_version: bool = False
    init_script: str = "/root/docker_init.sh"  # doc 003/004
    init_logs: str = "/home/admin/logs/docker_init.log.*"  # obdiag
    # the programs docker_init.sh needs RUNNING first (the zh V4.2.2 page: "check that supervisor has started")
    init_needs: tuple[str, ...] = ("oms_drc_cm", "oms_drc_supervisor")
    # the upgrade page to this release documents doc 004's recovery for "Version before 4.1.1 is not allowed to
    # upgrade" (create rm.oms_version, REPLACE the version before the upgrade, run docker_init.sh again)
    init_recovery: bool = False
    # the operator actions the upgrade page asks for (shown in the report and the terminal)
    notes: tuple[str, ...] = ()
    # projects real-time and forward switchover done: "required" where the page says "make sure", else
    # "recommended" (a warning naming them)
    projects_rule: str = "recommended"
    page: str = ""  # where the upgrade procedure to this release is documented
    sources: tuple[str, ...] = field(default_factory=tuple)  # the pages read for the entry

    @property
    def label(self) -> str:
        return str(self.version)

    def recovery_allows(self, source: Version) -> bool:
        """doc 004: the oms_version recovery only for a version before the upgrade of V4.1.1-CE or later
        ("Confirm that the OMS version before the upgrade is not earlier than V4.1.1-CE")."""
        return self.init_recovery and source >= V("4.1.1")


CLEAR_CACHE = "Clear the browser cache before you log on to OMS (the upgrade page's last step)."
RESUME_AFTER_ROLLBACK = (
    "After a rollback, the JDBCWriter/Connector (Incr-Sync, Full-Import) components may need a manual resume "
    "(the page's rollback step)."
)

# the hot-upgrade page's limits and FAQ (OD zh-CN/1300.upgrade-guide/309.hot-upgrade.md, commit 4a24c729)
HOT_REFRESH = (
    "After the hot upgrade, refresh the browser or delete the site's data before using the console (the page: the "
    "new release's features show only then; HTTP 500 or a missing user name otherwise, its FAQ)."
)
HOT_EXISTING_TASKS = (
    "Tasks that existed before the hot upgrade keep their configuration: the new release's settings and features "
    "(such as choosing the incremental start position at forward switchover, from V4.2.11-CE) apply only to tasks "
    "created after it (the page's limits)."
)
HOT_PAGE = "OD zh-CN/1300.upgrade-guide/309.hot-upgrade.md (commit 4a24c729)"


def _base(v: Version) -> Release:
    """What every release of a version range shares (the later entries only say what differs)."""
    return Release(
        version=v,
        console_lists_projects=v >= V("4.1.1"),
        has_oms_version=v >= V("4.2.1"),
    )


# Where a release's upgrade procedure differs from the shared one, or its page is to be named.
_DIFFERENCES: dict[Version, dict[str, object]] = {
    V("3.3.1"): {
        "page": "seeds 000/003 (OD V3.3.1 700.upgrade-guide)",
        "projects_rule": "required",
    },
    V("4.0.0"): {
        "page": "seeds 001/002 (OD V4.0.0 1300.upgrade-guide)",
        "projects_rule": "required",
        "notes": (CLEAR_CACHE,),
    },
    V("4.1.0"): {
        "page": "OD V4.1.0 en-US/1300.upgrade-guide/300.multi-node-upgrade.md",
        "projects_rule": "required",
        "notes": (CLEAR_CACHE,),
        "sources": ("OD V4.1.0 100.overview-1.md, 300.multi-node-upgrade.md, 400.faq.md",),
    },
    V("4.2.0"): {
        "page": "OD V4.2.0 en-US/1300.upgrade-guide/300.multi-node-upgrade.md",
        "projects_rule": "required",
        "notes": (CLEAR_CACHE, RESUME_AFTER_ROLLBACK),
        "sources": ("OD V4.2.0 100.overview-1.md, 300.multi-node-upgrade.md",),
    },
    V("4.2.1"): {
        "page": "OD V4.2.1 en-US/1300.upgrade-guide/300.multi-node-upgrade.md",
        "projects_rule": "required",
        "notes": (CLEAR_CACHE, RESUME_AFTER_ROLLBACK),
        "sources": ("OD V4.2.1 100.overview-1.md, 300.multi-node-upgrade.md",),
    },
    V("4.2.2"): {
        "page": "OD V4.2.2 en-US/1300.upgrade-guide/300.multi-node-upgrade.md",
        "projects_rule": "required",
        "notes": (CLEAR_CACHE, RESUME_AFTER_ROLLBACK),
        "sources": ("OD V4.2.2 100.overview-1.md, 300.multi-node-upgrade.md",),
    },
    V("4.2.6"): {
        # field notes: "4.2.6 from 4.2.4 (en site)"; the page itself is in no copy searched here: the procedure is
        # the 4.2.x pages' (OD V4.2.0 .. V4.2.2, doc 004), which are the same but for their versions
        "page": "field notes (OD en site, 4.2.6 from 4.2.4); procedure as OD V4.2.2 and doc 004",
        "notes": (CLEAR_CACHE,),
    },
    V("4.2.9"): {
        "page": "seed 004 (OD zh-CN/1300.upgrade-guide/300.multi-node-upgrade.md, 4.2.9)",
        "init_recovery": True,
        "sources": ("seed 004", "oms-doc zh-CN 300.multi-node-upgrade.md (4.2.9)"),
    },
    **{
        V(v): {
            "page": HOT_PAGE,
            "notes": (HOT_REFRESH, HOT_EXISTING_TASKS),
            "sources": (HOT_PAGE, "field notes (4.2.10 .. 4.2.13, the oms-ce repository from 4.2.11)"),
        }
        for v in ("4.2.10", "4.2.11", "4.2.12", "4.2.13")
    },
}


def release_of(version: Version | str) -> Release:
    """The release of ``version``: what the shared steps need to know of it.

    Raises:
        VersionError: not an OMS CE version this project knows.
    """
    v = Version.parse(version)
    if v not in KNOWN_VERSIONS:
        raise VersionError(f"OMS {v} is not a release this version of omsup knows ({KNOWN_VERSIONS[0]} .. "
                           f"{KNOWN_VERSIONS[-1]})")  # fmt: skip
    base = _base(v)
    return replace(base, **_DIFFERENCES.get(v, {}))  # type: ignore[arg-type]
