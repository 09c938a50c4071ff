"""What the deployment runs, read from its containers and the MetaDB: the steps' shared readings (the preflight,
the verify, the Connector fix and the probe read the version the same way)."""

from __future__ import annotations

from typing import Any

from ..context import Run
from ..envfile import Node
from ..errors import PreconditionRefused
from ..versions import Version


def image_version(run: Run, node: Node, attrs: dict[str, Any]) -> Version | None:
    """The OMS version an image names: its tag (feature_x.y.z-ce), else its label."""
    image = attrs.get("Image") if isinstance(attrs, dict) else None
    tags = run.engines[node.name].image_tags(image) if isinstance(image, str) and image else []
    return version_from_inspect(attrs, tags)


def version_from_inspect(attrs: Any, tags: list[str]) -> Version | None:
    """The version named by a container's `docker inspect` (Config.Image, then the image's tags, then
    the label com.oceanbase.oms.version), or None: never an error, whatever the engine answered."""
    config = attrs.get("Config") if isinstance(attrs, dict) else None
    config = config if isinstance(config, dict) else {}
    candidates = [config.get("Image"), *tags]
    for ref in candidates:
        if not isinstance(ref, str):
            continue
        tag = ref.rsplit(":", 1)[-1] if ":" in ref.rsplit("/", 1)[-1] else ""
        try:
            return Version.from_image_tag(tag)
        except ValueError:
            continue
    labels = config.get("Labels")
    label = labels.get("com.oceanbase.oms.version") if isinstance(labels, dict) else None
    try:
        return Version.parse(label) if isinstance(label, str) and label else None
    except ValueError:
        return None


def deployment_version(run: Run) -> Version:
    """The version that runs: the preflight's record, else node 1's image, else the newest oms_version row (which
    a release may leave behind: evidence, not the first source)."""
    if run.facts.versions:
        return Version.parse(run.facts.versions.source)
    n = run.env.nodes[0]
    found = image_version(run, n, run.engines[n.name].inspect(run.env.container) or {})
    if found is not None:
        return found
    rows = run.metadb.oms_versions(run.env.metadb.rm)
    if rows:
        return max(Version.parse(v) for v in rows)
    raise PreconditionRefused("cannot tell the running version: no version in the image tag and no oms_version row")
