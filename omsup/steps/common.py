"""Helpers and steps shared by the upgrade and the rollback runbooks."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import yaml

from ..container_spec import CONFIG_TARGET, bind_target
from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem, NotReady, PreconditionRefused
from ..ledger import parse_utc, utc_now
from ..runbook import Step
from ..versions import Version

READY_TIMEOUT = 600.0  # the document sleeps 300 s; we poll, and give up after twice that
SERVING_LINE = "OMS service start successfully"  # obd waits for this last log line


# -- facts kept in the ledger ----------------------------------------------------------------
def node_facts(run: Run, node: str) -> dict[str, Any]:
    facts = run.ledger.get("nodes", {}).get(node)
    if not facts:
        raise PreconditionRefused(f"the run ledger {run.ledger.path} has no record of node {node}'s old container",
                                  "the preflight of this run did not finish; run the runbook from the start")
    return dict(facts)


def set_node_fact(run: Run, node: str, key: str, value: Any) -> None:
    run.ledger.set_in("nodes", node, key, value)


def docker_cli(node: Node) -> str:
    """`docker` on the node, talking to the node's engine (a unix socket URL names a socket on the node)."""
    return f"DOCKER_HOST={node.docker} docker" if node.docker.startswith("unix://") else "docker"


def container_exec(run: Run, node: Node, *cmd: str) -> tuple[int, str]:
    """doc 004: `docker exec ${CONTAINER_NAME} ...` run on the node itself, through the host adapter.

    On the node rather than through the docker SDK: the SDK's ssh transport breaks exec streams
    now and then (broken pipe), and this is what the document has the operator type.
    """
    r = run.hosts[node.name].run(docker_cli(node) + " exec %s" + " %s" * len(cmd), run.env.container, *cmd)
    return int(r.rc), str(r.stdout) + str(r.stderr)


def container_by_id(run: Run, node: Node, container_id: str) -> dict[str, Any] | None:
    """The container with this id on the node (whatever its name now)."""
    return run.engines[node.name].inspect(container_id)


def _strings_at(attrs: Any, section: str, key: str) -> list[str]:
    """A list of strings from `docker inspect` (HostConfig.Binds, Config.Env); anything else is refused."""
    part = attrs.get(section) if isinstance(attrs, dict) else None
    value = (part.get(key) if isinstance(part, dict) else None) or []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ContainerProblem(f"docker inspect answered {section}.{key} = {str(value)[:200]!r}, not a list of strings",
                               "check the Docker engine's version and the container; nothing was changed")
    return list(value)


def binds_of(attrs: dict[str, Any]) -> list[str]:
    return _strings_at(attrs, "HostConfig", "Binds")


def env_of(attrs: dict[str, Any]) -> dict[str, str]:
    out = {}
    for item in _strings_at(attrs, "Config", "Env"):
        k, _, v = item.partition("=")
        out[k] = v
    return out


def output_summary(out: str, lines: int = 12) -> tuple[str, str]:
    """A failed tool's output for a message: its last non-empty line (where scripts say what went
    wrong) and its last ``lines`` lines, indented."""
    kept = [x for x in str(out).strip().splitlines() if x.strip()]
    last = kept[-1].strip() if kept else "(no output)"
    return last, "\n".join("    " + x for x in kept[-lines:])


def image_version(run: Run, node: Node, attrs: dict[str, Any]) -> Version | None:
    """The OMS version an image names: its tag (feature_x.y.z-ce), else its label."""
    candidates = [attrs.get("Config", {}).get("Image", "")]
    candidates += run.engines[node.name].image_tags(attrs.get("Image", ""))
    for ref in candidates:
        tag = ref.rsplit(":", 1)[-1] if ":" in ref.rsplit("/", 1)[-1] else ""
        try:
            return Version.from_image_tag(tag)
        except ValueError:
            continue
    label = (attrs.get("Config", {}).get("Labels") or {}).get("com.oceanbase.oms.version")
    try:
        return Version.parse(label) if label else None
    except ValueError:
        return None


def read_node_config(run: Run, node: Node, binds: list[str]) -> dict[str, Any]:
    """The node's config.yaml, read on the node from the source of its config bind."""
    src = next((b.split(":")[0] for b in binds if bind_target(b) == CONFIG_TARGET), None)
    if src is None:
        raise PreconditionRefused(f"node {node.name}: the container has no bind for {CONFIG_TARGET}",
                                  "the deployment does not look like the documented one; check `docker inspect`")
    text = run.hosts[node.name].check("cat -- %s", src, what=f"read {src}")
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PreconditionRefused(f"node {node.name}: {src} is not valid YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise PreconditionRefused(f"node {node.name}: {src} is not a mapping")
    return cfg


def stop_containers(run: Run, time_key: str, container_id_of: Any, what: str, gone_ok: bool) -> None:
    """doc: sudo docker stop ${CONTAINER_NAME} on every node, recording the time first (T1 or T3).

    ``container_id_of(node)`` names the container by id (whatever its name now), or None when
    the node has none to stop.
    """
    if not run.ledger.get(time_key):
        run.ledger.set(time_key, utc_now())  # recorded before the stops: the gap it measures is never short

    def stop(n: Node) -> str:
        cid = container_id_of(n)
        if cid is None:
            return "no container to stop on this node"
        attrs = container_by_id(run, n, cid)
        if attrs is None:
            if gone_ok:
                return "the container is gone"
            raise ContainerProblem(f"node {n.name}: the {what} container {cid[:12]} is gone")
        if attrs["State"].get("Running"):
            run.engines[n.name].stop(cid)
        return "stopped"

    run.each_node(stop, what=f"docker stop ({what} container)")


# -- HA (doc: System Parameters > ha.config) ------------------------------------------------
def set_ha_disabled(run: Run) -> None:
    rm = run.env.metadb.rm
    ha = run.metadb.ha_config(rm)
    run.evidence("ha.config before", ha)
    if run.ledger.get("ha_before") is None:
        run.ledger.set("ha_before", ha)
    if ha.get("enable") is not False:
        run.metadb.write_ha_config(rm, {**ha, "enable": False})
    verify_ha_disabled(run)


def verify_ha_disabled(run: Run) -> None:
    ha = run.metadb.ha_config(run.env.metadb.rm)
    run.evidence("ha.config read back", ha)
    assert ha.get("enable") is False, f"ha.config read back has enable={ha.get('enable')!r}, expected false"


def plan_disable_ha(run: Run) -> list[str]:
    return [f"[{run.env.metadb.rm}] UPDATE oms_normal_config SET cfg_value=<ha.config with enable=false> "
            "WHERE cfg_name='ha.config'; then read it back"]


DISABLE_HA = Step("disable_ha", "Disable HA", set_ha_disabled, plan_disable_ha, verify_ha_disabled,
                  superseded_by=("enable_ha", "rollback_enable_ha"))


def refetch_minutes(start: str, end: str, margin: int) -> int:
    """Whole minutes strictly greater than end - start, plus the configured margin."""
    seconds = (parse_utc(end) - parse_utc(start)).total_seconds()
    return max(1, math.floor(seconds / 60) + 1) + margin


def enable_ha_after(run: Run, start_key: str, end_key: str) -> None:
    """doc 003/004: enable HA, record T2 (or T3); perceiveStoreClientCheckpoint, or refetchStoreIntervalMin > T2 - T1."""
    rm = run.env.metadb.rm
    end = run.ledger.get(end_key) or utc_now()
    run.ledger.set(end_key, end)
    start = run.ledger.get(start_key)
    ha = run.metadb.ha_config(rm)
    new = {**ha, "enable": True}
    if run.env.ha.perceive_store_client_checkpoint:
        new["perceiveStoreClientCheckpoint"] = True
    else:
        if not start:
            raise PreconditionRefused(f"the run ledger has no {start_key}; refetchStoreIntervalMin cannot be computed",
                                      "set ha.perceive_store_client_checkpoint: true, or resume the run that recorded it")
        needed = refetch_minutes(start, end, run.env.ha.refetch_margin_min)
        new["refetchStoreIntervalMin"] = max(int(ha.get("refetchStoreIntervalMin") or 0), needed)
        run.ledger.set("refetch", {"from": start_key, "to": end_key, start_key: start, end_key: end,
                                   "minutes_needed": needed, "set": new["refetchStoreIntervalMin"]})
    run.metadb.write_ha_config(rm, new)
    verify_ha_enabled(run, start_key, end_key)


def verify_ha_enabled(run: Run, start_key: str, end_key: str) -> None:
    ha = run.metadb.ha_config(run.env.metadb.rm)
    run.evidence("ha.config read back", ha)
    run.evidence(f"{start_key} and {end_key}", {start_key: run.ledger.get(start_key), end_key: run.ledger.get(end_key)})
    assert ha.get("enable") is True, f"ha.config read back has enable={ha.get('enable')!r}, expected true"
    if run.env.ha.perceive_store_client_checkpoint:
        assert ha.get("perceiveStoreClientCheckpoint") is True, "perceiveStoreClientCheckpoint is not true"
    else:
        start, end = run.ledger.get(start_key), run.ledger.get(end_key)
        gap_min = (parse_utc(end) - parse_utc(start)).total_seconds() / 60
        value = ha.get("refetchStoreIntervalMin")
        assert isinstance(value, int) and value > gap_min, (
            f"refetchStoreIntervalMin is {value!r}, must be greater than {end_key} - {start_key} = {gap_min:.2f} min")


# -- waiting for OMS -------------------------------------------------------------------------
def wait_until(check: Any, timeout: float, describe: Any, interval: float = 0.5,
               live: Any = None) -> Any:
    """Poll ``check()`` until it returns a truthy value; on timeout raise NotReady with ``describe()``."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    shown = t0
    while True:
        value = check()
        if value:
            return value
        if live is not None and time.monotonic() - shown >= 5:
            shown = time.monotonic()
            live(f"still polling after {shown - t0:.0f}s (gives up after {timeout:.0f}s)")
        if time.monotonic() > deadline:
            raise NotReady(f"timed out after {timeout:.0f}s: {describe()}",
                           "look at the container's log (below); run the runbook again to resume once it is fixed")
        time.sleep(interval)


def container_state(run: Run, node: Node) -> dict[str, Any]:
    attrs = run.engines[node.name].inspect(run.env.container) or {}
    return dict(attrs.get("State") or {})


def require_running(run: Run, node: Node) -> None:
    state = container_state(run, node)
    if not state.get("Running"):
        logs = run.engines[node.name].logs(run.env.container, 15)
        raise ContainerProblem(
            f"node {node.name}: container {run.env.container} is not running (status {state.get('Status')}, "
            f"exit code {state.get('ExitCode')})\n  last log lines:\n{logs}",
            "fix the cause shown in the log, then run the runbook again: it resumes and starts the container",
        )


def init_ready(run: Run, node: Node) -> bool:
    """Ready for docker_init.sh: the container runs and its supervisord answers.

    Not public: what the documented `sleep 300` waits for. This project's choice: the
    container's processes are up, i.e. `supervisorctl status` answers (OMS runs them under
    supervisord, obd).
    """
    require_running(run, node)
    rc, _ = container_exec(run, node, "supervisorctl", "status")
    return rc == 0


def serving(run: Run, node: Node) -> bool:
    """The node serves: /oms/health says healthy and the log shows the start line (obd)."""
    require_running(run, node)
    try:
        healthy = bool(run.consoles[node.name].health().get("healthy"))
    except NotReady:
        return False
    return healthy and SERVING_LINE in run.engines[node.name].logs(run.env.container, 200)


METADB_CHECK_EVERY = 5.0  # seconds, while waiting for a console


def wait_serving(run: Run, node: Node, timeout: float = READY_TIMEOUT) -> None:
    run.live(f"{node.name}: waiting for the console to serve")
    last_ping = time.monotonic()

    def check() -> bool:
        nonlocal last_ping
        if serving(run, node):
            return True
        # OMS does not start without its MetaDB: a MetaDB that does not answer is said at once (as a
        # MetaDB problem) instead of after the whole readiness timeout
        if time.monotonic() - last_ping >= METADB_CHECK_EVERY:
            last_ping = time.monotonic()
            run.metadb.blame_if_down(f"node {node.name}: the console does not serve yet",
                                     "running the runbook again resumes here")
        return False

    wait_until(check, timeout, interval=0.2,
               live=lambda m: run.live(f"{node.name}: console: {m}"),
               describe=lambda: f"node {node.name}: the console does not serve (health or '{SERVING_LINE}' missing); "
                       f"last log lines:\n{run.engines[node.name].logs(run.env.container, 15)}")


def servers_online(run: Run) -> list[dict[str, Any]]:
    """doc 004 step 7: every machine Online in the server list; returns the list."""
    def check() -> list[dict[str, Any]] | None:
        lst = run.consoles[run.env.nodes[0].name].servers()
        by_ip = {s.get("ip"): s for s in lst}
        if all(by_ip.get(n.ip, {}).get("status") == "Online" for n in run.env.nodes):
            return lst
        check.last = lst  # type: ignore[attr-defined]
        return None

    return wait_until(check, 60, lambda: "not every server is Online: " + json.dumps(getattr(check, "last", None)),
                      interval=1.0)
