"""Stand-in images and installation packages, built offline and cached by content.

A Debian root filesystem from debootstrap (the package mirror apt uses) becomes the base
image; each version adds the stand-in on top; each version's installation package is the
gzipped `docker save` archive that `docker load -i` reads (doc 004), as users receive it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker

from . import engines, facts, paths
from .paths import NodePaths
from .procs import SandboxError, run

SUITE = "bookworm"
INCLUDE = "python3-minimal,python3-pymysql,python3-yaml"
TRIM = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
]


def mirror() -> str:
    """The Debian mirror apt on this machine uses (the only one reachable)."""
    for f in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = f.read_text()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s", text, re.M
        )
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:16]


def base_key() -> str:
    return _digest(SUITE.encode(), INCLUDE.encode(), " ".join(TRIM).encode())


def base_tar() -> Path:
    """The trimmed root filesystem as a tar, made once with debootstrap and cached."""
    out = paths.CACHE_DIR / f"rootfs-{base_key()}.tar"
    if out.exists():
        return out
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is not installed: apt-get install debootstrap")
    paths.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.CACHE_DIR) as tmp:
        root = Path(tmp) / "root"
        run(["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(root), mirror()], timeout=900)
        for t in TRIM:
            shutil.rmtree(root / t, ignore_errors=True)
        partial = out.with_suffix(".partial")
        run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], timeout=600)
        os.replace(partial, out)
    return out


def app_key(version: str) -> str:
    files = sorted(p for p in paths.IMAGE_SRC.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    parts = [base_key().encode(), version.encode(), paths.FACTS_PY.read_bytes()]
    parts += [p.relative_to(paths.IMAGE_SRC).as_posix().encode() + b"\0" + p.read_bytes() for p in files]
    return _digest(*parts)


def image_ref(version: str) -> str:
    return facts.image_ref(version)


def package_path(version: str) -> Path:
    return paths.CACHE_DIR / "packages" / f"oms-{version}-{app_key(version)}.tar.gz"


def _build(client: docker.DockerClient, version: str) -> None:
    base = f"oms-standin-base:{base_key()}"
    try:
        client.images.get(base)
    except docker.errors.ImageNotFound:
        client.api.import_image_from_file(str(base_tar()), repository="oms-standin-base", tag=base_key())
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copytree(
            paths.IMAGE_SRC, ctx, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "Dockerfile.in")
        )
        shutil.copy(paths.FACTS_PY, Path(ctx) / "standin" / "facts.py")
        # the release's version with its files (a hot upgrade replaces the files, not the image's environment)
        (Path(ctx) / "standin" / "VERSION").write_text(version + "\n")
        if not facts.has_hot_scripts(version):  # the hot-upgrade scripts come with the releases of its pages
            for script in facts.HOT_SCRIPTS:
                (Path(ctx) / "root" / script).unlink(missing_ok=True)
        (Path(ctx) / "Dockerfile").write_text(
            (paths.IMAGE_SRC / "Dockerfile.in").read_text().replace("@VERSION@", str(version)).replace("@BASE@", base)
        )
        client.images.build(path=ctx, tag=image_ref(version), rm=True, forcerm=True)


def ensure_packages(versions: list[str]) -> dict[str, Path]:
    """Installation packages of ``versions``, building what the cache lacks in a builder engine."""
    missing = [v for v in versions if not package_path(v).exists()]
    if missing:
        base_tar()
        builder = NodePaths("builder", paths.STATE_DIR / "builder")
        engines.start(builder)
        try:
            client = engines.client(builder, timeout=600)
            for v in missing:
                _build(client, v)
                out = package_path(v)
                out.parent.mkdir(parents=True, exist_ok=True)
                partial = out.with_suffix(".partial")
                with gzip.open(partial, "wb", compresslevel=1) as f:
                    for chunk in client.images.get(image_ref(v)).save(named=True):
                        f.write(chunk)
                os.replace(partial, out)
            client.close()
        finally:
            engines.stop(builder)
            shutil.rmtree(builder.root, ignore_errors=True)
    return {v: package_path(v) for v in versions}


def place_package(src: Path, version: str) -> Path:
    """Put a package where the env file says the nodes find it (a hard link where possible)."""
    dst = paths.STATE_DIR / "packages" / f"oms_{version}-ce.tar.gz"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return dst


def load(node: NodePaths, package: Path) -> None:
    client = engines.client(node, timeout=600)
    try:
        with open(package, "rb") as f:
            client.images.load(f)
    finally:
        client.close()


def gunzip_ok(path: Path) -> bool:
    return subprocess.run(["gzip", "-t", str(path)], capture_output=True).returncode == 0
