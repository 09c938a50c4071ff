"""The new image: the installation package checked in the preflight, `docker load -i` on every node.

doc 004 step 3.1: "Load the downloaded OMS Community Edition installation package to the local
image repository: docker load -i <installation package>". The load starts right after the
preflight, in the background, so that it is not part of the downtime; its step waits for it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..context import Run
from ..envfile import Node
from ..errors import ContainerProblem, PreconditionRefused
from ..record import Package
from ..redact import redact
from ..runbook import Step, Touches
from ..versions import Version, VersionError


def manifest_tags(text: str) -> list[str]:
    """RepoTags of a `docker save` manifest.json. Raises ValueError (naming manifest.json) when it is not one."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("manifest.json is not JSON") from None
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise ValueError("manifest.json is not a list of images")
    lists = [e.get("RepoTags") or [] for e in doc]
    if not all(isinstance(x, list) and all(isinstance(t, str) for t in x) for x in lists):
        raise ValueError("manifest.json has RepoTags that are not lists of strings")
    return [t for x in lists for t in x]


def check_package(run: Run, node: Node, target: Version) -> Package:
    """The installation package of ``target`` on ``node``: present, a complete archive, the right image."""
    path = run.env.packages.get(target)
    if path is None:
        raise PreconditionRefused(
            f"the environment file has no installation package for {target}",
            f"add packages: {{{target}: /path/on/the/nodes.tar.gz}} to the environment file",
        )
    host = run.hosts[node.name]
    if not host.readable(path):
        raise PreconditionRefused(
            f"node {node.name}: installation package {path} is missing or unreadable",
            f"copy the {target} installation package to {path} on {node.name}",
        )
    listing = host.archive_manifest(path)
    if listing.rc != 0:
        raise PreconditionRefused(
            f"node {node.name}: {path} is not a complete image archive (damaged download?): "
            f"tar says {redact(listing.stderr.strip())[-300:]!r}"
        )
    try:
        tags = manifest_tags(listing.stdout)
    except ValueError as e:
        raise PreconditionRefused(f"node {node.name}: {path} is not a docker save archive ({e})") from None
    for tag in tags:
        try:
            if Version.from_image_tag(tag.rsplit(":", 1)[-1]) == target:
                return Package(path=path, image=tag)
        except VersionError:
            continue
    raise PreconditionRefused(
        f"node {node.name}: {path} holds {tags or 'no tagged image'}, not {target}",
        "put the installation package of the target version there",
    )


LOADED = re.compile(r"^Loaded image(?: ID)?: (\S+)\s*$", re.M)


def loaded_refs(out: str) -> list[str]:
    """What `docker load` says it loaded: `Loaded image: repo:tag` or `Loaded image ID: sha256:...` lines."""
    return LOADED.findall(str(out))


def _load_on(run: Run, n: Node) -> dict[str, Any]:
    pk = run.facts.packages[n.name]
    eng = run.engines[n.name]
    out, ref = "already present", pk.image
    if not eng.has_image(pk.image):
        run.live(f"{n.name}: docker load -i {pk.path}")
        out = eng.load_archive(pk.path)
        refs = loaded_refs(out)
        if pk.image not in refs:  # the reference comes from docker load's own output
            raise ContainerProblem(
                f"node {n.name}: `docker load -i {pk.path}` said it loaded {refs or out.strip()!r}, "
                f"not {pk.image} (the archive's manifest)",
                "check the installation package",
            )
    image_id = eng.image_id(ref)
    if image_id is None:
        raise ContainerProblem(f"node {n.name}: image {ref} is absent after docker load -i {pk.path}")
    return {"image": ref, "id": image_id, "docker load": out.strip()}


def _same_everywhere(run: Run, loaded: dict[str, dict[str, Any]]) -> None:
    """obd compares image IDs across nodes: one image everywhere before anything starts."""
    ids = {node: r["id"] for node, r in loaded.items()}
    if len(set(ids.values())) != 1:
        raise ContainerProblem(
            f"the nodes loaded different images for {run.runbook.target}: {ids}",
            "put the same installation package on every node; nothing was started",
        )
    with run.record.change() as f:
        for node, r in loaded.items():
            f.packages[node].image_id = r["id"]


def preload_images(run: Run) -> None:
    """Start `docker load -i` on every node in the background, before the old containers stop.

    doc 004 loads the image after the backup, while OMS is down; loading it earlier shortens
    the downtime and changes nothing the procedure depends on. The old containers are not stopped
    before it ended well (the same image on every node); the load step reports it.
    """
    if run.plan or run.record.step_done(LOAD_IMAGE.key):
        return
    run.in_background(LOAD_IMAGE.key, lambda: run.each_node_in_step(LOAD_IMAGE.key, lambda n: _load_on(run, n)))


def wait_early_load(run: Run) -> None:
    """Before the old containers stop: the early load ended, and well (else nothing is stopped)."""
    early = run.background.get(LOAD_IMAGE.key)
    if early is None:
        return
    run.live("waiting for the image load started after the preflight")
    failure = early.exception()
    if failure is not None:
        run.background.pop(LOAD_IMAGE.key, None)
        raise ContainerProblem(
            f"loading the new image after the preflight failed, so no container was stopped: {failure}",
            "fix the cause (the package, the engine); running the runbook again "
            "resumes here, with the old containers still running",
        )
    _same_everywhere(run, early.result())


def load_image(run: Run) -> None:
    early = run.background.pop(LOAD_IMAGE.key, None)
    if early is not None:
        results = early.result()  # a failure of the early load fails this step, with its message
        run.evidence("loaded in advance, before the old containers stopped, to shorten the downtime", results)
    _same_everywhere(run, run.each_node(lambda n: _load_on(run, n), what="docker load -i"))


def verify_loaded(run: Run) -> None:
    for n in run.env.nodes:
        pk = run.facts.packages[n.name]
        assert run.engines[n.name].image_id(pk.image) == pk.image_id, (
            f"node {n.name}: {pk.image} is not the image {pk.image_id} loaded before"
        )


def plan_load(run: Run) -> list[str]:
    pk = run.facts.packages
    return [
        f"{n.name}: docker load -i {pk[n.name].path if n.name in pk else '?'}  "
        f"(expect {pk[n.name].image if n.name in pk else '?'})"
        for n in run.env.nodes
    ]


LOAD_IMAGE = Step(
    "load_image",
    "Load the new image",
    load_image,
    frozenset({Touches.HOSTS, Touches.ENGINES}),
    False,  # an image beside the old one: the containers still run what they ran (the hot upgrade loads first)
    plan_load,
    verify_loaded,
)
