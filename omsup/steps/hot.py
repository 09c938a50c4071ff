"""The hot upgrade and its rollback (oceanbase/oms-doc zh-CN/1300.upgrade-guide/309.hot-upgrade.md, commit 4a24c729).

The page, in order: load the new image; fetch its three scripts through the tool container (step 2); back up
rm, cm and cm_hb (step 3); dump the new image's files on the host (step 4); stop the management programs in
the container (step 5: `supervisorctl stop nginx oms_console oms_drc_cm oms_drc_supervisor sshd`); copy the
files into the running container (step 6, which keeps the container's files in /home/admin/logs/backup<ts>);
run /root/docker_hot_update_init.sh in it (step 7). When that fails, "you can" roll back with
`docker_copy_dumpfile_rollback.sh <container> /home/admin/logs/backup<ts>` and /root/docker_init.sh: the page
leaves it to the operator, so the run stops there and names the rollback runbook (it does not run it itself).
No HA switch, no container stop, no T1/T2: the container, its mounts and the tasks' processes stay.

Limits (the page): OMS V4.2.1 or later (the upgrade rule); no task created before or during it (the project list
is compared with the preflight's before anything changes and before each node); the browser refreshed after
(a note). The page is written for one host: with several nodes, they go one at a time, in the environment
file's order (the page says nothing of an order; one at a time keeps every other console and CM serving, and a
failure leaves one node to roll back).

What the page leaves open is evidence, never a condition: where the dumped files go, what the scripts print,
whether docker_hot_update_init.sh writes rm.oms_version (the project's rule: omsup.steps.verify), and whether
the processes left running by step 5 are the tasks' components (shown with their PIDs before and after).
"""

from __future__ import annotations

import posixpath
from typing import Any

from ..adapters.hot import MANAGEMENT_PROGRAMS, SCRIPTS, TOOL_CONTAINER, HotUpgrade, Proc
from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem, NothingToDo, PreconditionRefused
from ..record import HotBack, HotNode, ProcRow, Record, RunStatus, UpgradeRef, Verified, parse_utc, utc_now
from ..redact import excerpt
from ..releases import release_of
from ..runbook import Step, Touches, command
from ..versions import UPGRADE_RULES, Version
from .containers import upgrade_ref
from .init import output_summary
from .projects import list_projects
from .restore import mark_rolled_back, upgrade_record
from .serving import servers_online, serving, wait_programs, wait_until
from .verify import oms_version_reading

PAGE = "OD 309"
HOT_RUNBOOKS = tuple(r.runbook for r in UPGRADE_RULES if r.kind == "hot" and r.runbook)
OBD_FREE_BYTES = 20 * 1024**3  # obd's online upgrade wants 20 GB free (field notes); the page names no figure
SERVING_TIMEOUT = 600.0


# == what past runs say: the files a container runs after a hot upgrade =============================
def hot_upgraded_version(state_dir: str, env: str, container_ids: dict[str, str]) -> Version | None:
    """The version a completed hot upgrade left in these very containers (node -> container ID), unless it was
    rolled back: the image a container was started from no longer says what it runs after a hot upgrade."""
    found = None
    for name in HOT_RUNBOOKS:
        for rec in Record.runs(state_dir, name, env):
            if rec.data.status != RunStatus.COMPLETE or rec.data.rolled_back is not None:
                continue
            nodes = rec.facts.nodes
            if nodes and all(nodes[n].container_id == cid for n, cid in container_ids.items() if n in nodes):
                found = Version.parse(rec.facts.target)
    return found


# == helpers ==========================================================================================
def _hot(run: Run, n: Node) -> HotNode:
    h = run.facts.hot.get(n.name)
    if h is None:
        raise PreconditionRefused(
            f"the run ledger {run.record.path} has no hot-upgrade record of node {n.name}",
            "the step that fetches the page's scripts did not finish in this run; run the runbook again",
        )
    return h


def _tools(run: Run, n: Node, h: HotNode | None = None) -> HotUpgrade:
    return run.hot(n.name, (h or _hot(run, n)).folder)


def _rows(procs: list[Proc]) -> list[ProcRow]:
    return [ProcRow(pid=p.pid, args=p.args) for p in procs]


def _rollback_hint(run: Run) -> str:
    back = next((r.rollback for r in UPGRADE_RULES if r.runbook == run.runbook.name), None)
    return (
        f"the page's rollback puts the container's files back and runs docker_init.sh again: {command(back, run.env.source)}"
        if back
        else "roll back by hand (the page's docker_copy_dumpfile_rollback.sh, then /root/docker_init.sh)"
    )


def _project_ids(run: Run, version: Version) -> dict[str, str | None]:
    return {p.id: p.name for p in list_projects(run, version)}


def no_new_tasks(run: Run, before_any_change: bool) -> None:
    """The page: "make sure no task is being created before and during the hot upgrade". The projects now
    are those the preflight recorded (none appeared since)."""
    source = Version.parse(run.facts.versions.source) if run.facts.versions else run.runbook.target
    before = {p.id for p in run.facts.projects_before or []}
    now = _project_ids(run, source)
    new = {pid: name for pid, name in now.items() if pid not in before}
    if not new:
        return
    shown = ", ".join(f"{name} ({pid})" for pid, name in new.items())
    if before_any_change:
        raise PreconditionRefused(
            f"a task was created since the preflight: {shown}; the page forbids creating tasks before and during the "
            "hot upgrade (its limits). Nothing in the deployment was changed",
            "wait until it is created, then run the runbook again: it resumes and checks again (call this run off "
            "with omsup abandon to start with a new preflight that records it)",
        )
    raise ContainerProblem(
        f"a task was created during the hot upgrade: {shown}; the page forbids it (its limits); nodes already "
        f"upgraded: {', '.join(k for k, h in run.facts.hot.items() if h.serving) or 'none'}",
        "do not create tasks now; " + _rollback_hint(run) + ", or, once the task is created, run this runbook again",
        resumable=False,
    )


def components(run: Run, version: Version) -> dict[str, str | None]:
    """Every project's Incr-Sync components and their states ("project/component" -> status), where the console
    publishes DescribeProjectComponents (from 4.1.1); else {}."""
    if not release_of(version).console_lists_projects:
        return {}
    console = run.consoles[run.env.nodes[0].name]
    out: dict[str, str | None] = {}
    for p in list_projects(run, version):
        for c in console.components(p.id):
            out[f"{p.id}/{c['name']}"] = c.get("status")
    return out


def _serving_all(run: Run, n: Node, tools: HotUpgrade, timeout: float = SERVING_TIMEOUT) -> None:
    """Every management program RUNNING and the console healthy (what step 5 took down, back)."""
    wait_programs(run, n, MANAGEMENT_PROGRAMS, timeout=timeout)
    wait_until(
        lambda: serving(run, n),
        timeout,
        describe=lambda: f"node {n.name}: /oms/health does not say healthy after the hot update",
        live=lambda m: run.live(f"{n.name}: console: {m}"),
    )


def _seconds_between(a: str, b: str) -> float:
    return round((parse_utc(b) - parse_utc(a)).total_seconds(), 1)


# == step 2: the page's scripts, out of the new image ===================================================
def _folder(run: Run, n: Node, attempt: int) -> str:
    return posixpath.join(run.env.work_dir, run.env.name, n.name, f"{run.runbook.name}-{run.record.run_id}-a{attempt}")


def fetch_scripts(run: Run) -> None:
    source = Version.parse(run.facts.versions.source) if run.facts.versions else None
    if source == Version(4, 2, 1) and run.runbook.target >= Version(4, 2, 11):
        run.warn(
            "from 4.2.1 to 4.2.11 or later, an OceanBase Store not yet started needs drc_frame.dbversion set (the "
            "hot-upgrade FAQ, field notes): not readable from here; check such Stores before the update (step 5)"
        )
    with run.record.change() as f:
        f.hot_attempt += 1
        attempt = f.hot_attempt

    def one(n: Node) -> dict[str, Any]:
        pk = run.facts.packages[n.name]
        folder = _folder(run, n, attempt)
        tools = run.hot(n.name, folder)
        left = tools.tool_container()
        if left is not None:
            if left.get("Image") != pk.image_id or (left.get("State") or {}).get("Running"):
                raise PreconditionRefused(
                    f"node {n.name}: a container named {TOOL_CONTAINER} exists already (image "
                    f"{str(left.get('Image'))[:19]}, {(left.get('State') or {}).get('Status')}); the page's step 2 "
                    "creates its tool container under that name",
                    f"see what it is (docker inspect {TOOL_CONTAINER} on {n.name}); remove it if it is a leftover "
                    f"(docker rm -f {TOOL_CONTAINER}), then run the runbook again",
                )
            tools.remove_tool_container()  # the new image's own tool container, left by an interrupted attempt
        size = run.engines[n.name].image_size(pk.image) or 0
        base = posixpath.dirname(folder)
        run.hosts[n.name].make_private_dir(base)
        free = run.hosts[n.name].free_bytes(base)
        if free < 2 * size:
            raise PreconditionRefused(
                f"node {n.name}: {base} has {free} bytes free; the files dumped from the image (step 4) may take up "
                f"to its size, {size} bytes, and the container keeps its own copy (step 6)",
                "free space there, or set work_dir in the environment file to a folder with room",
            )
        if free < OBD_FREE_BYTES:
            run.warn(
                f"node {n.name}: {base} has {free / 1024**3:.1f} GiB free; obd's online upgrade asks for 20 GB "
                f"(field notes); the page names no figure (the image is {size / 1024**3:.1f} GiB)"
            )
        rc, out = tools.fetch_scripts(pk.image)
        digests = {}
        for s in SCRIPTS:
            facts = run.hosts[n.name].file_facts(tools.script_path(s))
            if facts is not None:
                digests[s] = facts["sha256"]
        missing = [s for s in SCRIPTS if s not in digests]
        if missing:
            raise PreconditionRefused(
                f"node {n.name}: the image {pk.image} lacks the hot upgrade's scripts {', '.join(missing)} (step 2: "
                f"docker cp out of {TOOL_CONTAINER} exited {rc}: {excerpt(out, 300)!r}); nothing was changed",
                "the hot upgrade needs a release whose image carries them (the page's); check the installation "
                "package, or follow a documented cold upgrade (omsup path)",
            )
        if rc != 0:
            raise ContainerProblem(f"node {n.name}: step 2 exited {rc}: {excerpt(out, 300)!r}")
        with run.record.change() as f:
            f.hot[n.name] = HotNode(folder=folder, image=pk.image, scripts=digests)
        return {"folder": folder, "scripts": digests, "free bytes": free, "image bytes": size}

    run.each_node(one, what="the page's scripts fetched from the new image")


def verify_scripts(run: Run) -> None:
    """On resume: the scripts are where they were fetched, unchanged (their SHA-256)."""
    for n in run.env.nodes:
        h = _hot(run, n)
        tools = _tools(run, n, h)
        for s, digest in h.scripts.items():
            facts = run.hosts[n.name].file_facts(tools.script_path(s))
            if facts is None or facts["sha256"] != digest:
                raise PreconditionRefused(
                    f"node {n.name}: {tools.script_path(s)} is "
                    + ("missing" if facts is None else f"not the script fetched (sha256 {facts['sha256'][:16]}...)"),
                    "run the runbook again after putting it back, or call this run off (omsup abandon) before step 5",
                )


def plan_scripts(run: Run) -> list[str]:
    return [
        f"{n.name}: in {posixpath.join(run.env.work_dir, run.env.name, n.name)}/<run>: docker run -d --net host --name "
        f"{TOOL_CONTAINER} <new image> bash && docker cp {TOOL_CONTAINER}:/root/{{{','.join(SCRIPTS)}}} . && docker rm "
        f"-f {TOOL_CONTAINER}"
        for n in run.env.nodes
    ]


HOT_SCRIPTS = Step(
    "hot_scripts",
    "Fetch the hot upgrade's scripts from the new image",
    fetch_scripts,
    frozenset({Touches.HOSTS, Touches.ENGINES}),
    False,  # a folder of scripts on the host and a tool container removed at once: the deployment is unchanged
    plan_scripts,
    verify_scripts,
)


# == step 4: the new image's files on the host ============================================================
def dump_files(run: Run) -> None:
    no_new_tasks(run, before_any_change=True)

    def one(n: Node) -> dict[str, Any]:
        h = _hot(run, n)
        rc, out = _tools(run, n, h).dump_files(h.image)
        if rc != 0:
            raise ContainerProblem(
                f"node {n.name}: sh docker_dump_file_from_image.sh {h.image} exited {rc}: {excerpt(out, 500)!r}",
                "see its output; nothing in the container was changed: run the runbook again",
            )
        with run.record.change() as f:
            f.hot[n.name].dumped = utc_now()
        return {"exit": rc, "output": output_summary(out)[1]}

    run.each_node(one, what="docker_dump_file_from_image.sh")


def plan_dump(run: Run) -> list[str]:
    return [f"{n.name}: sh docker_dump_file_from_image.sh <new image>  (in the scripts' folder)" for n in run.env.nodes]


HOT_DUMP = Step(
    "hot_dump",
    "Dump the new image's files on each host",
    dump_files,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.CONSOLE}),
    False,
    plan_dump,
)


# == steps 5-7, one node at a time ======================================================================
def _stopped(run: Run, n: Node, rc: int, out: str) -> None:
    """Step 5 took effect: none of the management programs runs, whatever supervisorctl's exit code (a program
    stopped already answers "not running", an error exit in some supervisor releases)."""
    states, _, _ = run.oms[n.name].programs()
    running = [p for p in MANAGEMENT_PROGRAMS if states.get(p) in ("RUNNING", "STARTING", "BACKOFF")]
    if running:
        raise ContainerProblem(
            f"node {n.name}: after `supervisorctl stop` (exit {rc}: {excerpt(out, 300)!r}) {', '.join(running)} still run",
            "see supervisord's log in the container; run the runbook again to resume (stop changes nothing twice)",
        )


def _update_node(run: Run, n: Node, first: bool) -> dict[str, Any]:
    h = _hot(run, n)
    tools = _tools(run, n, h)
    if h.init_started and (h.init_rc is None or h.init_rc != 0):
        raise ContainerProblem(
            f"node {n.name}: docker_hot_update_init.sh "
            + ("was interrupted" if h.init_rc is None else f"exited {h.init_rc}")
            + f" (at {h.init_started}); whether running it again is safe is not documented",
            _rollback_hint(run),
            resumable=False,
        )
    if h.copy_started and not h.copied:
        raise ContainerProblem(
            f"node {n.name}: docker_copy_dumpfile_to_container.sh was interrupted (at {h.copy_started}); the "
            "container may hold files of both releases",
            _rollback_hint(run),
            resumable=False,
        )
    if not h.stopped:
        if not h.stop_started:  # the console of this node still serves: the checks that read it
            no_new_tasks(run, before_any_change=first)
            if first and run.facts.components_before is None:
                source = Version.parse(run.facts.versions.source) if run.facts.versions else run.runbook.target
                with run.record.change() as f:
                    f.components_before = components(run, source)
            with run.record.change() as f:
                f.hot[n.name].stop_started = utc_now()
        rc, out = tools.stop_programs()  # stopping stopped programs changes nothing: run again on resume
        run.evidence(f"{n.name}: step 5, supervisorctl stop {' '.join(MANAGEMENT_PROGRAMS)}", f"exit {rc}\n{out}")
        _stopped(run, n, rc, out)
        with run.record.change() as f:
            f.hot[n.name].stopped, f.hot[n.name].stop_output = utc_now(), out[-2000:]
        survivors = tools.processes()
        with run.record.change() as f:
            f.hot[n.name].survivors = _rows(survivors)
    if not h.copied:
        before = tools.backup_folders()
        with run.record.change() as f:
            f.hot[n.name].backups_before, f.hot[n.name].copy_started = before, utc_now()
        rc, out = tools.copy_to_container()
        made = [b for b in tools.backup_folders() if b not in before]
        run.evidence(f"{n.name}: step 6, docker_copy_dumpfile_to_container.sh", f"exit {rc}\n{out}")
        with run.record.change() as f:
            f.hot[n.name].backup_folder = made[-1] if len(made) == 1 else None
        if rc != 0 or len(made) != 1:
            raise ContainerProblem(
                f"node {n.name}: docker_copy_dumpfile_to_container.sh exited {rc}"
                + (
                    ""
                    if len(made) == 1
                    else f" and made {len(made)} backup folders under /home/admin/logs (expected one: {made})"
                )
                + f": {excerpt(out, 300)!r}",
                _rollback_hint(run),
                resumable=False,
            )
        with run.record.change() as f:
            f.hot[n.name].copied = utc_now()
    h = _hot(run, n)
    if h.init_rc is None:
        with run.record.change() as f:
            f.hot[n.name].init_started = utc_now()
        run.live(f"{n.name}: docker exec {run.env.container} /root/docker_hot_update_init.sh")
        rc, out = tools.hot_update_init()
        summary, shown = output_summary(out)
        with run.record.change() as f:
            f.hot[n.name].init_rc, f.hot[n.name].init_output = rc, shown
        run.evidence(f"{n.name}: step 7, docker_hot_update_init.sh", f"exit {rc}\n{out}")
        if rc != 0:
            raise ContainerProblem(
                f"node {n.name}: docker_hot_update_init.sh exited {rc}: {summary}; the container's files before step 6 "
                f"are in {h.backup_folder}",
                _rollback_hint(run),
                resumable=False,
            )
    run.live(f"{n.name}: waiting for the management programs and the console")
    _serving_all(run, n, tools)
    h = _hot(run, n)
    now = utc_now()
    alive = {(p.pid, p.args) for p in tools.processes()}
    ended = [p for p in h.survivors if (p.pid, p.args) not in alive]
    with run.record.change() as f:
        hn = f.hot[n.name]
        hn.serving, hn.survivors_ended = now, ended
        began = hn.stop_started or hn.stopped
        hn.unavailable_s = _seconds_between(began, now) if began else None
    if ended:
        run.warn(
            f"node {n.name}: of the {len(h.survivors)} processes that outlived step 5's stop, {len(ended)} ended during "
            f"the hot update: {', '.join(f'{p.pid} {p.args[:60]}' for p in ended)} (the page says the tasks keep "
            "running; the task states are compared next)"
        )
    return {
        "backup folder": h.backup_folder,
        "console and CM unavailable (s)": _hot(run, n).unavailable_s,
        "processes that outlived the stop": len(h.survivors),
        "of them still running": len(h.survivors) - len(ended),
    }


def hot_update(run: Run) -> None:
    for i, n in enumerate(run.env.nodes):
        if _hot(run, n).serving:
            continue
        first = i == 0

        def one(node: Node, first: bool = first) -> dict[str, Any]:
            return _update_node(run, node, first)

        run.each_node(one, nodes=[n], what="steps 5-7")


def plan_update(run: Run) -> list[str]:
    return [
        line
        for n in run.env.nodes
        for line in (
            f"{n.name}: check that no task was created since the preflight",
            f"{n.name}: docker exec {run.env.container} supervisorctl stop {' '.join(MANAGEMENT_PROGRAMS)}",
            f"{n.name}: sh docker_copy_dumpfile_to_container.sh {run.env.container}  (records its backup folder)",
            f"{n.name}: docker exec {run.env.container} /root/docker_hot_update_init.sh; then every management "
            "program RUNNING and /oms/health healthy (the next node only then)",
        )
    ]


HOT_UPDATE = Step(
    "hot_update",
    "Hot update, one node at a time",
    hot_update,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.CONSOLE}),
    True,
    plan_update,
    no_way_back=True,  # the container runs new files on migrated metadata: only finishing, or the rollback
)


# == after the update ==================================================================================
def same_containers(run: Run, nodes: dict[str, Any]) -> dict[str, str]:
    """Every node's container is the one the preflight recorded (its ID and start time), running: a hot upgrade
    neither stops nor replaces it."""
    seen = {}
    for n in run.env.nodes:
        nf = nodes[n.name]
        attrs = run.engines[n.name].inspect(run.env.container) or {}
        state = attrs.get("State") or {}
        assert attrs.get("Id") == nf.container_id, (
            f"node {n.name}: {run.env.container} is container {str(attrs.get('Id'))[:12]}, not "
            f"{nf.container_id[:12]} of the preflight: the hot upgrade does not replace the container"
        )
        assert state.get("Running") and state.get("StartedAt") == nf.started_at, (
            f"node {n.name}: the container {'is not running' if not state.get('Running') else 'was restarted'} "
            f"(started {state.get('StartedAt')}, the preflight saw {nf.started_at})"
        )
        seen[n.name] = f"{nf.container_id[:12]} started {nf.started_at}"
    return seen


def _tasks_unchanged(run: Run, before_projects: list[Any], before_components: dict[str, str | None] | None,
                     version: Version) -> list[Any]:  # fmt: skip
    after = list_projects(run, version)
    now = {p.id: p for p in after}
    rows = [
        {"id": p.id, "name": p.name, "before": p.status, "after": now[p.id].status if p.id in now else None}
        for p in before_projects
    ]
    run.evidence("task states before and after (the page: the tasks keep running)", rows)
    changed = [r for r in rows if r["before"] != r["after"]]
    assert not changed, f"task states changed across the hot upgrade: {changed}"
    if before_components:
        comps = components(run, version)
        diff = {k: (v, comps.get(k)) for k, v in before_components.items() if comps.get(k) != v}
        run.evidence("Incr-Sync components before and after", {"before": before_components, "after": comps})
        assert not diff, f"Incr-Sync components changed state across the hot upgrade (before, after): {diff}"
    return after


def _in_place_and_serving(run: Run, nodes: dict[str, Any]) -> list[dict[str, Any]]:
    """What the hot upgrade and its rollback verify alike: the same containers (never restarted), every console
    healthy, every server Online; returns the servers as seen."""
    containers = same_containers(run, nodes)
    run.evidence("the same containers, never restarted", containers)
    health = {n.name: run.consoles[n.name].health() for n in run.env.nodes}
    run.evidence("health", health)
    for name, h in health.items():
        assert h.get("healthy") is True, f"node {name}: /oms/health says healthy={h.get('healthy')!r}"
    servers = servers_online(run)
    run.evidence("servers", servers)
    return servers


def verify_hot(run: Run) -> None:
    target = run.runbook.target
    servers = _in_place_and_serving(run, run.facts.nodes)
    no_new_tasks(run, before_any_change=False)
    after = _tasks_unchanged(run, run.facts.projects_before or [], run.facts.components_before, target)
    ha_now = run.metadb.ha_config(run.env.metadb.rm)
    if ha_now != run.facts.ha_before:
        run.warn(
            f"ha.config changed during the hot upgrade (which does not touch it): before {run.facts.ha_before}, now {ha_now}"
        )
    rows = run.metadb.oms_versions(run.env.metadb.rm)
    run.evidence("oms_version rows", rows)
    run.evidence(
        "per node: console and CM unavailable (s), processes that outlived the stop and still run",
        {
            k: {
                "unavailable_s": h.unavailable_s,
                "backup_folder": h.backup_folder,
                "kept running": [f"{p.pid} {p.args}" for p in h.survivors if p not in (h.survivors_ended or [])],
                "ended": [f"{p.pid} {p.args}" for p in h.survivors_ended or []],
            }
            for k, h in run.facts.hot.items()
        },
    )
    names = oms_version_reading(run, rows)
    gone = [n.name for n in run.env.nodes if not serving(run, n)]
    assert not gone, f"at the end of the hot upgrade, node(s) {', '.join(gone)} no longer serve"
    with run.record.change() as f:
        f.verified = Verified(
            oms_version=rows, servers=servers, images={k: f"{target} (hot)" for k in f.hot}, oms_version_names=names
        )
        f.projects_after = after


HOT_VERIFY = Step(
    "hot_verify",
    "Verify: the same containers, health, servers Online, version, tasks unchanged",
    verify_hot,
    frozenset({Touches.METADB, Touches.CONSOLE, Touches.ENGINES}),
    False,
    None,
    verify_hot,
)


# == the rollback ==========================================================================================
def hot_rollback_preflight(run: Run) -> None:
    up = upgrade_record(run)
    if up.data.rolled_back is not None:
        raise NothingToDo(
            f"hot upgrade run {up.run_id} was rolled back already (by run {up.data.rolled_back.by} at "
            f"{up.data.rolled_back.at})",
            "nothing to do: the containers run the files from before that upgrade",
        )
    f = up.facts
    touched = {k: h for k, h in f.hot.items() if h.stop_started or h.copy_started}
    if not touched:
        raise NothingToDo(
            f"hot upgrade run {up.run_id} changed no container (it stopped before step 5)",
            f"nothing to roll back; call that run off: omsup abandon {up.data.runbook} --env {run.env.source} "
            "--reason ...",
        )
    same_containers(run, f.nodes)

    def one(n: Node) -> dict[str, Any]:
        h = touched.get(n.name)
        if h is None:
            return {"untouched": "step 5 never ran here"}
        if not h.copy_started:
            return {"stopped only": "its management programs are started again; no file was copied"}
        tools = _tools(run, n, h)
        folder = h.backup_folder
        if folder is None:  # interrupted: the one folder that appeared since the copy began
            made = [b for b in tools.backup_folders() if b not in (h.backups_before or [])]
            if len(made) != 1:
                raise PreconditionRefused(
                    f"node {n.name}: the upgrade recorded no backup folder, and {len(made)} appeared since its step 6 "
                    f"began ({made})",
                    "roll this node back by hand (docker_copy_dumpfile_rollback.sh with the right folder)",
                )
            folder = made[0]
            with up.lock:
                up.data.facts.hot[n.name].backup_folder = folder
        if not tools.has_folder(folder):
            raise PreconditionRefused(f"node {n.name}: the container has no {folder} (step 6's backup) any more")
        digest = h.scripts.get(SCRIPTS[2])
        facts = run.hosts[n.name].file_facts(tools.script_path(SCRIPTS[2]))
        if facts is None or facts["sha256"] != digest:
            raise PreconditionRefused(
                f"node {n.name}: {tools.script_path(SCRIPTS[2])} is missing or changed since the upgrade fetched it"
            )
        return {"backup folder": folder, "rollback script": tools.script_path(SCRIPTS[2])}

    found = run.each_node(one, what="the upgrade's backup folder and rollback script")
    with run.record.change() as rf:
        rf.upgrade = UpgradeRef(
            run_id=up.run_id,
            ledger=str(up.path),
            t1=None,
            versions=f.versions,
            backups=f.backups,
            nodes=f.nodes,
            ha_before=f.ha_before,
            projects_before=f.projects_before,
            hot={k: h for k, h in f.hot.items()},
        )
        for k, v in found.items():
            if "backup folder" in v:
                rf.upgrade.hot[k].backup_folder = v["backup folder"]
    run.evidence("what the hot upgrade left, per node", found)


def verify_hot_rollback_preflight(run: Run) -> None:
    upgrade_ref(run)


HOT_ROLLBACK_PREFLIGHT = Step(
    "hot_rollback_preflight",
    "Preflight (changes nothing)",
    hot_rollback_preflight,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.METADB}),
    False,
    None,
    verify_hot_rollback_preflight,
    taken_once=True,  # the copy of the upgrade's record: the backup folders, the containers
)


def _roll_back_node(run: Run, n: Node) -> dict[str, Any]:
    up = upgrade_ref(run)
    h = up.hot[n.name]
    tools = _tools(run, n, h)
    back = run.facts.hot_back.get(n.name) or HotBack()
    if not back.stopped:  # the page's step 5 again: the files are put back under stopped programs
        rc, out = tools.stop_programs()
        run.evidence(f"{n.name}: supervisorctl stop {' '.join(MANAGEMENT_PROGRAMS)}", f"exit {rc}\n{out}")
        _stopped(run, n, rc, out)
        with run.record.change() as f:
            f.hot_back[n.name] = back = HotBack(stopped=utc_now())
    if not h.copy_started:  # step 5 only: nothing was copied, nothing to put back or initialize
        pass
    elif not back.copied_back:
        assert h.backup_folder is not None
        rc, out = tools.copy_back(h.backup_folder)
        run.evidence(f"{n.name}: docker_copy_dumpfile_rollback.sh {h.backup_folder}", f"exit {rc}\n{out}")
        if rc != 0:
            raise ContainerProblem(
                f"node {n.name}: docker_copy_dumpfile_rollback.sh {run.env.container} {h.backup_folder} exited {rc}: "
                f"{excerpt(out, 300)!r}",
                "see its output; run the rollback again (it copies the same backup again)",
            )
        with run.record.change() as f:
            f.hot_back[n.name].copied_back, f.hot_back[n.name].copy_output = utc_now(), out[-2000:]
    back = run.facts.hot_back[n.name]
    if h.copy_started and back.init_rc != 0:
        run.live(f"{n.name}: docker exec {run.env.container} /root/docker_init.sh")
        rc, out = tools.init_again()
        summary, shown = output_summary(out)
        run.evidence(f"{n.name}: docker_init.sh", f"exit {rc}\n{out}")
        with run.record.change() as f:
            f.hot_back[n.name].init_rc, f.hot_back[n.name].init_output = rc, shown
        if rc != 0:
            raise ContainerProblem(
                f"node {n.name}: docker_init.sh exited {rc} after the files were put back: {summary}",
                "see /home/admin/logs/docker_init.log.* in the container; run the rollback again (the vendor runs "
                "docker_init.sh again)",
            )
    # the page has no step that starts what step 5 stopped: docker_init.sh may have; what it left is started here
    states, _, _ = run.oms[n.name].programs()
    idle = [p for p in MANAGEMENT_PROGRAMS if states.get(p) not in ("RUNNING", "STARTING")]
    if idle:
        rc, out = tools.start_programs(idle)
        run.evidence(
            f"{n.name}: supervisorctl start {' '.join(idle)} (left stopped by docker_init.sh)", f"exit {rc}\n{out}"
        )
    with run.record.change() as f:
        f.hot_back[n.name].started = idle
    _serving_all(run, n, tools)
    now = utc_now()
    with run.record.change() as f:
        b = f.hot_back[n.name]
        b.serving = now
        b.unavailable_s = _seconds_between(b.stopped, now) if b.stopped else None
    return {"backup folder": h.backup_folder, "started after docker_init.sh": idle, "unavailable (s)": b.unavailable_s}


def hot_rollback(run: Run) -> None:
    up = upgrade_ref(run)
    for n in reversed(run.env.nodes):
        h = up.hot.get(n.name)
        if h is None or not (h.stop_started or h.copy_started):
            continue
        if (run.facts.hot_back.get(n.name) or HotBack()).serving:
            continue
        run.each_node(lambda n: _roll_back_node(run, n), nodes=[n], what="files put back, docker_init.sh")


def plan_hot_rollback(run: Run) -> list[str]:
    return [
        line
        for n in reversed(run.env.nodes)
        for line in (
            f"{n.name}: docker exec {run.env.container} supervisorctl stop {' '.join(MANAGEMENT_PROGRAMS)}",
            f"{n.name}: sh docker_copy_dumpfile_rollback.sh {run.env.container} <the backup folder step 6 made>",
            f"{n.name}: docker exec {run.env.container} /root/docker_init.sh; start what it left stopped; "
            "/oms/health healthy",
        )
    ]


HOT_ROLLBACK = Step(
    "hot_rollback",
    "Put each container's files back, docker_init.sh again",
    hot_rollback,
    frozenset({Touches.HOSTS, Touches.ENGINES, Touches.CONSOLE}),
    True,
    plan_hot_rollback,
    no_way_back=True,
)


def verify_hot_rollback(run: Run) -> None:
    up = upgrade_ref(run)
    _in_place_and_serving(run, up.nodes)
    # rm.oms_version as before the upgrade: docker_init.sh of a later upgrade reads the version before from it
    # (doc 004); the page's rollback leaves the rows the hot update wrote
    rm = run.env.metadb.rm
    before = up.versions.oms_version_before if up.versions else None
    rows = run.metadb.oms_versions(rm)
    if before is not None and rows is not None:
        extra = [v for v in rows if v not in before]
        if extra:
            run.metadb.delete_oms_versions(rm, extra)
            with run.record.change() as f:
                f.oms_version_set_back = before
            run.evidence("rm.oms_version set back to its rows before the upgrade", {"removed": extra, "kept": before})
        rows = run.metadb.oms_versions(rm)
        missing = [v for v in before if v not in (rows or [])]
        assert not missing, f"{rm}.oms_version lacks {missing}, rows it had before the upgrade"
    run.evidence("oms_version rows", rows)
    source = Version.parse(up.versions.source) if up.versions else run.runbook.target
    _tasks_unchanged(run, up.projects_before or [], None, source)
    gone = [n.name for n in run.env.nodes if not serving(run, n)]
    assert not gone, f"at the end of the rollback, node(s) {', '.join(gone)} no longer serve"
    mark_rolled_back(run, up.ledger)


HOT_ROLLBACK_VERIFY = Step(
    "hot_rollback_verify",
    "Verify: the same containers, health, servers Online, oms_version as before, tasks unchanged",
    verify_hot_rollback,
    frozenset({Touches.METADB, Touches.CONSOLE, Touches.ENGINES}),
    True,  # rm.oms_version set back to its rows before the upgrade
    None,
)
