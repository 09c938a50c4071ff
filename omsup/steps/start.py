"""Starting OMS containers: the new ones with the old binds, or the old ones again in a rollback.

doc 003/004: `docker run ... -v <the same mounts> -e IS_UPGRADE=true ...`; the rollback's
`docker restart` of the old container. The old containers are renamed and kept, never removed;
so are the new ones after a rollback.
"""

from __future__ import annotations

import time
from typing import Any

from ..container_spec import ContainerSpec
from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem
from ..runbook import Step, Touches
from .containers import STOP_NEW, binds_of, env_of, require_running, upgrade_ref
from .restore import VERIFY_RESTORE
from .serving import servers_online, wait_serving

RUN_LABEL = "omsup.run"  # on the containers a run creates, so an interrupted run recognizes its own


def new_spec(run: Run, n: Node) -> ContainerSpec:
    nf = run.node_facts(n.name)
    image = run.facts.packages[n.name].image
    return ContainerSpec(
        run.env.container,
        image,
        tuple(nf.binds),
        n.ip,
        upgrade=True,
        extra_env=tuple(sorted(nf.user_env.items())),
        labels=((RUN_LABEL, run.record.run_id),),
    )


def kept_name(run: Run) -> str:
    source = run.facts.versions.source if run.facts.versions else "unknown"
    return f"{run.env.container}-pre-{source}-{run.record.run_id}"


def start_new(run: Run) -> None:
    def start(n: Node) -> dict[str, Any]:
        nf = run.node_facts(n.name)
        eng = run.engines[n.name]
        current = eng.inspect(run.env.container)
        if current is not None and current["Id"] == nf.container_id:
            # keep the old container for rollback: it gives its name to the new one
            with run.record.change() as f:
                f.nodes[n.name].kept_as = kept_name(run)
            eng.rename(nf.container_id, kept_name(run))
            current = None
        if current is None:
            spec = new_spec(run, n)
            run.evidence(f"{n.name}: docker run", spec.command_line())
            attrs = eng.run(spec)
            with run.record.change() as f:
                f.nodes[n.name].new_container_id = attrs["Id"]
        elif (
            current["Id"] == nf.new_container_id
            or (current["Config"].get("Labels") or {}).get(RUN_LABEL) == run.record.run_id
        ):
            # resume: this run created it (perhaps interrupted before it wrote the record)
            with run.record.change() as f:
                f.nodes[n.name].new_container_id = current["Id"]
            if not current["State"].get("Running"):
                eng.start(current["Id"])
        else:
            raise ContainerProblem(
                f"node {n.name}: a container named {run.env.container} exists that is neither the "
                f"old one nor the one this run created ({current['Id'][:12]})",
                "someone else changed the node; investigate before going on",
            )
        return check_new(run, n)

    run.each_node(start, what="new container started")


def check_new(run: Run, n: Node) -> dict[str, Any]:
    nf = run.node_facts(n.name)
    attrs = run.engines[n.name].inspect(run.env.container)
    assert attrs is not None and attrs["Id"] == nf.new_container_id, f"node {n.name}: the new container is not there"
    new_binds = binds_of(attrs)
    assert sorted(new_binds) == sorted(nf.binds), (  # the same mounts; the engine keeps them in no set order
        f"node {n.name}: the new container's binds differ from the old ones.\n  old: {nf.binds}\n  new: {new_binds}"
    )
    env = env_of(attrs)
    assert env.get("IS_UPGRADE") == "true" and env.get("OMS_HOST_IP") == n.ip, (
        f"node {n.name}: the new container lacks IS_UPGRADE=true or OMS_HOST_IP={n.ip}: {env}"
    )
    # started means still running a moment later (a failing entry point exits at once)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        require_running(run, n)
        time.sleep(0.5)
    return {
        "old_binds": nf.binds,
        "new_binds": new_binds,
        "image": attrs["Config"]["Image"],
        "env": sorted(f"{k}={v}" for k, v in env.items()),
    }


def verify_new(run: Run) -> None:
    run.each_node(lambda n: check_new(run, n), what="new container checked")


def plan_start(run: Run) -> list[str]:
    out = []
    for n in run.env.nodes:
        out.append(
            f"{n.name}: docker rename {run.env.container} {run.env.container}-pre-<source>-<run id>  "
            "(old container kept for rollback)"
        )
        out.append(f"{n.name}: {new_spec(run, n).command_line()}")
    return out


START_NEW = Step(
    "start_new",
    "Start the new containers with the old binds",
    start_new,
    frozenset({Touches.ENGINES}),
    True,
    plan_start,
    verify_new,
    no_way_back=True,
)


# == Restart the old containers (rollback) =========================================================
def restart_old(run: Run) -> None:
    up = upgrade_ref(run)
    target = up.versions.target if up.versions else "target"

    def restart(n: Node) -> dict[str, Any]:
        nf = up.nodes[n.name]
        eng = run.engines[n.name]
        holder = eng.inspect(run.env.container)
        if holder is not None and holder["Id"] != nf.container_id:
            if holder["Id"] != nf.new_container_id:
                raise ContainerProblem(
                    f"node {n.name}: {run.env.container} is a container this rollback does not know "
                    f"({holder['Id'][:12]})",
                    "investigate before going on",
                )
            kept = f"{run.env.container}-failed-{target}-{run.record.run_id}"
            eng.rename(holder["Id"], kept)  # the new container is kept, stopped, under another name
            with run.record.change():
                upgrade_ref(run).nodes[n.name].new_kept_as = kept
        old = eng.inspect(nf.container_id)
        if old is None:
            raise ContainerProblem(f"node {n.name}: the old container {nf.container_id[:12]} is gone")
        if old["Name"].lstrip("/") != run.env.container:
            eng.rename(nf.container_id, run.env.container)
        if not (eng.inspect(nf.container_id) or {}).get("State", {}).get("Running"):
            eng.start(nf.container_id)  # doc: docker restart <old container>
        return check_old(run, n)

    run.each_node(restart, what="old container restarted")
    run.each_node(lambda n: wait_serving(run, n), what="console serves")
    run.evidence("servers", servers_online(run))


def check_old(run: Run, n: Node) -> dict[str, Any]:
    nf = upgrade_ref(run).nodes[n.name]
    attrs = run.engines[n.name].inspect(run.env.container)
    assert attrs is not None and attrs["Id"] == nf.container_id, (
        f"node {n.name}: {run.env.container} is not the old container"
    )
    assert attrs["Image"] == nf.image_id, (
        f"node {n.name}: runs image {attrs['Image'][:19]}, expected {nf.image_id[:19]}"
    )
    assert sorted(binds_of(attrs)) == sorted(nf.binds), f"node {n.name}: binds {binds_of(attrs)} differ from {nf.binds}"
    require_running(run, n)
    return {"image": nf.image, "binds": nf.binds}


def verify_restarted(run: Run) -> None:
    run.each_node(lambda n: check_old(run, n), what="old container runs")
    servers_online(run)


def plan_restart(run: Run) -> list[str]:
    return [
        f"{n.name}: docker rename {run.env.container} {run.env.container}-failed-<target>-<run id>; docker rename "
        f"<old container> {run.env.container}; docker start {run.env.container}; wait until it serves"
        for n in run.env.nodes
    ]


RESTART_OLD = Step(
    "restart_old",
    "Restart the old containers",
    restart_old,
    frozenset({Touches.ENGINES, Touches.CONSOLE, Touches.METADB}),
    True,
    plan_restart,
    verify_restarted,
    supersedes=(STOP_NEW, VERIFY_RESTORE),
)
