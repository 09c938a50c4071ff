"""The SHA-256 of a dump as it is written: openssl where the host has it, sha256sum otherwise; the
same digest either way, in the line parse_file_facts and the dump read."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest

from omsup.adapters.hosts import SHA256_STDIN, parse_file_facts

DATA = b"-- MySQL dump\nINSERT INTO `t` VALUES (1,'a\\nb');\n" * 1000


def digest_line(path: str) -> str:
    r = subprocess.run(["/bin/bash", "-c", SHA256_STDIN], input=DATA, capture_output=True, env={"PATH": path})
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


@pytest.mark.parametrize("tools", [("openssl", "sha256sum"), ("sha256sum",)])
def test_the_digest_is_the_sha256_of_stdin_whichever_tool_the_host_has(tmp_path, tools):
    for tool in tools:
        found = shutil.which(tool)
        assert found, f"{tool} is not installed here"
        os.symlink(found, tmp_path / tool)
    line = digest_line(str(tmp_path))
    assert ("*stdin" in line) == ("openssl" in tools)  # which tool answered
    assert parse_file_facts(f"{len(DATA)}\n{line}", "f") == {
        "size": len(DATA),
        "sha256": hashlib.sha256(DATA).hexdigest(),
    }


def test_with_neither_tool_the_pipe_fails():
    r = subprocess.run(["/bin/bash", "-c", SHA256_STDIN], input=DATA, capture_output=True, env={"PATH": "/nonexistent"})
    assert r.returncode != 0 and not r.stdout
